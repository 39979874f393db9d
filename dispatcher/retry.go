package dispatcher

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// errorHeaders are the failure's headers on a bounced job; they are
// removed before the job goes out again.
var errorHeaders = []string{
	schema.HeaderStatus, schema.HeaderErrorMessage, schema.HeaderErrorCode, schema.HeaderFailedDeployment,
	schema.HeaderRetryAfterMs, schema.HeaderProviderStatus, schema.HeaderQueuedUs,
}

// onRetry takes a job a worker bounced after a failed attempt: it retries
// it in its tier after a back-off (elsewhere when the tier has another
// deployment), falls back to another tier, or answers the producer with
// the failure.
func (d *Dispatcher) onRetry(m *nats.Msg) {
	if m.Reply == "" || m.Header == nil {
		d.noReply.Add(1)
		d.log.Warn("bounced job without reply subject or headers dropped", "bytes", len(m.Data))
		return
	}
	now := time.Now()
	h := m.Header
	e := bouncedError(h)
	tierName := h.Get(schema.HeaderTier)
	p := pending{
		msg:          m,
		arrived:      now,
		attempts:     atoiOr(h.Get(schema.HeaderAttempt), 1),
		tierAttempts: atoiOr(h.Get(schema.HeaderTierAttempts), 1),
		fallbacks:    atoiOr(h.Get(schema.HeaderFallbacks), 0),
		origin:       h.Get(schema.HeaderOriginTier),
	}
	if ex := h.Get(schema.HeaderExclude); ex != "" {
		p.exclude = strings.Split(ex, ",")
	}
	if dep := h.Get(schema.HeaderFailedDeployment); dep != "" && !p.excluded(dep) {
		p.exclude = append(p.exclude, dep)
	}
	deadline, derr := d.deadline(m, now)
	if derr != nil {
		deadline = now.Add(d.cfg.DefaultTimeout)
	}
	p.deadline = deadline
	for _, k := range errorHeaders {
		delete(h, k)
	}

	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		d.handBack(m, cmpOr(p.origin, tierName))
		return
	}
	t := d.tiers[tierName]
	if t != nil && p.tierAttempts <= d.cfg.Policy.retries(e.Code) {
		delay := d.cfg.Policy.backoff(p.tierAttempts, e.RetryAfter(), d.rng)
		if due := now.Add(delay); due.Before(deadline) {
			d.delayed.add(delayedJob{due: due, tier: tierName, job: p})
			d.mu.Unlock()
			d.retries.Add(1)
			d.log.Debug("retry scheduled", "tier", tierName, "code", e.Code, "attempt", p.attempts+1, "delay", delay)
			return
		}
	}
	if h.Get(schema.HeaderDisableFallbacks) != "true" {
		if out, fails, ok := d.fallback(p, tierName, e.Code, now, nil, nil); ok {
			d.mu.Unlock()
			d.send(out, fails)
			return
		}
	}
	d.mu.Unlock()
	if p.attempts > 1 {
		e.Message += " (after " + strconv.Itoa(p.attempts) + " attempts)"
	}
	d.reply(m, e)
}

// fallback moves p to the next fallback tier that has a worker not
// cooling, if any, and dispatches what it can there. Called with d.mu
// held.
func (d *Dispatcher) fallback(p pending, current, code string, now time.Time, out []dispatch, fails []failed) ([]dispatch, []failed, bool) {
	origin := cmpOr(p.origin, current)
	list := d.cfg.Policy.fallbacks(origin, code)
	for i := p.fallbacks; i < len(list) && i < d.cfg.Policy.maxFallbacks(); i++ {
		name := list[i]
		t := d.tiers[name]
		if t == nil || name == current || len(t.workers) == 0 {
			continue
		}
		if cooling, _ := t.allCooling(now); cooling {
			continue
		}
		p.origin, p.fallbacks, p.tierAttempts, p.exclude = origin, i+1, 0, nil
		t.queueOf(&p).pushFront(p)
		d.fallbacks.Add(1)
		d.log.Debug("fallback", "from", current, "to", name, "code", code)
		out, fails = d.drain(t, now, out, fails)
		return out, fails, true
	}
	return out, fails, false
}

// requeueLost dispatches again the jobs a lost worker held: in front of
// the tier's queue, unless their deadline passed or they were streams
// (a stream cannot restart unseen: its producer gets an error). Called with
// d.mu held.
func (d *Dispatcher) requeueLost(t *tier, w *worker, now time.Time, fails []failed) []failed {
	for seq, p := range w.jobs {
		delete(w.jobs, seq)
		switch {
		case !p.deadline.After(now):
			fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeTimeout, "worker %s was lost holding the job, and its deadline has passed", w.hb.Worker)})
		case p.msg.Header.Get(schema.HeaderStreaming) == "true":
			fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeConnection, "worker %s was lost in the middle of the stream", w.hb.Worker)})
		default:
			q := *p
			q.attempts++
			q.tierAttempts++
			t.queueOf(&q).pushFront(q)
			d.redispatched.Add(1)
		}
	}
	return fails
}

// bouncedError rebuilds the typed error a worker bounced a job with.
func bouncedError(h nats.Header) *schema.Error {
	code := h.Get(schema.HeaderErrorCode)
	if code == "" {
		code = schema.CodeInternal
	}
	e := schema.NewError(code, h.Get(schema.HeaderErrorMessage))
	if ms, err := strconv.ParseInt(h.Get(schema.HeaderRetryAfterMs), 10, 64); err == nil && ms > 0 {
		e.RetryAfterMs = ms
	}
	e.ProviderStatus = atoiOr(h.Get(schema.HeaderProviderStatus), 0)
	return e
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}
