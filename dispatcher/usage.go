package dispatcher

import (
	"time"

	"github.com/llmq/llmq/schema"
)

// Usage limits (LiteLLM's rpm and tpm) hold fleet-wide without a shared
// store: each worker enforces its deployment's limits exactly on its own
// calls, over a sliding window, refusing a job it has no room for (a
// bounce marked Llmq-Refused), and reports its window's usage in every
// heartbeat, early when the window fills or frees. A dispatcher skips the
// workers whose deployment is at its limit as far as it can tell: the last
// beat's usage plus the jobs it sent since the beat (as least-busy counts
// in-flight jobs), summed over the workers of one deployment. What it
// cannot see — the jobs other dispatchers sent since the last beat — the
// worker refuses; a refused job waits in the dispatcher's queue without
// counting an attempt. See docs/protocol.md, "Usage limits".

// limited reports whether the worker's deployment has usage limits.
func (w *worker) limited() bool { return w.hb.RPM > 0 || w.hb.TPM > 0 }

// rateUse is the worker's usage window as this dispatcher sees it: the
// last beat's calls and tokens, plus this dispatcher's jobs sent since the
// beat, each counted as a call of the window's mean tokens.
func (w *worker) rateUse() (calls, tokens float64) {
	calls, tokens = float64(w.hb.RPMUsed), float64(w.hb.TPMUsed)
	if n := w.unseen(); n > 0 {
		unseen := float64(n)
		calls, tokens = calls+unseen, tokens+unseen*meanTokens(float64(w.hb.RPMUsed), float64(w.hb.TPMUsed))
	}
	return calls, tokens
}

// meanTokens is a call's mean tokens in a window, at least 1.
func meanTokens(calls, tokens float64) float64 {
	if calls <= 0 {
		return 1
	}
	return max(tokens/calls, 1)
}

// usage is the usage of w's deployment as this dispatcher sees it at now
// (summed over the tier's workers of that deployment): rel, the highest
// share of a limit in use (0 without limits); tokens, the window's tokens;
// and whether it has room for one more call of the window's mean size.
// A worker that refused a job has no room until the refusal's
// retry-after.
func (t *tier) usage(w *worker, now time.Time) (rel, tokens float64, room bool) {
	calls, tokens := w.rateUse()
	if w.shared {
		for _, v := range t.workers {
			if v != w && v.hb.Deployment == w.hb.Deployment {
				c, k := v.rateUse()
				calls, tokens = calls+c, tokens+k
			}
		}
	}
	if !w.limited() {
		return 0, tokens, true
	}
	room = !now.Before(w.refusedUntil)
	if rpm := float64(w.hb.RPM); rpm > 0 {
		rel = calls / rpm
		room = room && calls+1 <= rpm
	}
	if tpm := float64(w.hb.TPM); tpm > 0 {
		rel = max(rel, tokens/tpm)
		room = room && tokens+meanTokens(calls, tokens) <= tpm
	}
	return rel, tokens, room
}

// reshare marks the workers that share their deployment with another
// worker of the tier (their usage is summed). Called with d.mu held when
// the tier's workers or their deployments change.
func (t *tier) reshare() {
	for _, w := range t.workers {
		w.shared = false
		for _, v := range t.workers {
			if v != w && v.hb.Deployment == w.hb.Deployment {
				w.shared = true
				break
			}
		}
	}
}

// awake reports whether w could take a job at now but for free slots and
// usage limits: ready, and not cooling (see usable).
func (t *tier) awake(w *worker, now time.Time) bool {
	if w.hb.State != schema.StateReady {
		return false
	}
	return !w.cooling(now) || (w.hb.CoolingReason == schema.CodeRateLimited && t.deployments() == 1)
}

// rateBlocked reports whether every awake worker of the tier (at least
// one) is at its deployment's usage limit, and when the first of them has
// room again as far as the dispatcher knows: when the oldest call leaves
// its window, or its refusal's retry-after ends.
func (t *tier) rateBlocked(now time.Time) (bool, time.Time) {
	var first time.Time
	for _, w := range t.workers {
		if !t.awake(w, now) {
			continue
		}
		if _, _, room := t.usage(w, now); room {
			return false, time.Time{}
		}
		at := now
		if frees := time.UnixMilli(w.hb.RateFreesMs); w.hb.RateFreesMs > 0 && frees.After(at) {
			at = frees
		}
		if w.refusedUntil.After(at) {
			at = w.refusedUntil
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return !first.IsZero(), first
}

// rateLimited is the answer to a job no deployment of the tier can take
// under its usage limits before its deadline.
func rateLimited(tierName string, now, frees time.Time) *schema.Error {
	wait := frees.Sub(now)
	return schema.Errorf(schema.CodeRateLimited, "every deployment of tier %q is at its rpm/tpm limit; the first has room in %v",
		tierName, wait.Round(time.Millisecond)).WithRetryAfter(wait)
}
