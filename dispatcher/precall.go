package dispatcher

import (
	"time"

	"github.com/llmq/llmq/schema"
)

// precallSkip handles a job a worker's pre-call check refused
// (context_window_exceeded with a prompt estimate): when a healthy worker
// of the same tier, of another deployment, takes the job's tags and has a
// window that fits (or an unknown one), the job goes there at once, ahead
// of the queue, without a back-off and without using a retry: LiteLLM
// filters such deployments out before picking, which is no retry either.
// Otherwise it returns false and rewrites e to say that no deployment of
// the tier fits; the job then takes the tier's context_window_fallbacks,
// or is answered e. Called with d.mu held.
func (d *Dispatcher) precallSkip(t *tier, p *pending, e *schema.Error, failed string, now time.Time) ([]dispatch, []failed, bool) {
	if t == nil || e.Code != schema.CodeContextWindowExceeded || p.sel == nil || p.sel.tokens <= 0 {
		return nil, nil, false
	}
	p.sel.prepare(t, now)
	largest := 0
	for _, w := range t.workers {
		largest = max(largest, w.hb.MaxInputTokens)
		if w.hb.Deployment == failed || !t.healthy(w, now) || !p.sel.allows(w) {
			continue
		}
		if !t.room(p, d.cfg.MaxQueue) {
			break // full: the job falls back or is answered
		}
		p.tierAttempts = max(p.tierAttempts-1, 0)
		t.queueOf(p).pushFront(*p)
		out, fails := d.drain(t, now, nil, nil)
		d.log.Debug("pre-call check: job moved to a deployment with a larger window", "tier", t.name, "prompt_tokens", p.sel.tokens)
		return out, fails, true
	}
	*e = *schema.Errorf(schema.CodeContextWindowExceeded,
		"no deployment of tier %q has a context window large enough for this prompt of about %d tokens (characters/4; the largest max_input_tokens is %d): pre-call checks",
		t.name, p.sel.tokens, largest)
	return nil, nil, false
}

// retriesFor is how many retries in its tier a job gets after failing
// with code on deployment: retry_policy's count for the code, else the
// deployment's litellm_params.num_retries for a retryable code (LiteLLM
// takes the count from the failing deployment), else retries(code).
func (p *Policy) retriesFor(code, deployment string) int {
	if _, ok := p.RetryPolicy[code]; !ok {
		if n, ok := p.DeploymentRetries[deployment]; ok && retryable(code) {
			return n
		}
	}
	return p.retries(code)
}

// retryable reports whether num_retries applies to code.
func retryable(code string) bool {
	probe := Policy{NumRetries: 1}
	return probe.retries(code) == 1
}
