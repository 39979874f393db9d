package dispatcher

import (
	"errors"
	"maps"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// errorHeaders are the failure's headers on a bounced job; they are
// removed before the job goes out again.
var errorHeaders = []string{
	schema.HeaderStatus, schema.HeaderErrorMessage, schema.HeaderErrorCode, schema.HeaderFailedDeployment,
	schema.HeaderRetryAfterMs, schema.HeaderProviderStatus, schema.HeaderQueuedUs, schema.HeaderQueueWaitUs, schema.HeaderRefused,
}

// onRetry takes a job a worker bounced after a failed attempt: it retries
// it in its tier after a back-off (elsewhere when the tier has another
// deployment), falls back to another tier, or answers the producer with
// the failure. The bounce is checked and clamped first (parseBounce), and
// honoured only within the job's retry budget and the tier's max_queue.
func (d *Dispatcher) onRetry(m *nats.Msg) {
	now := time.Now()
	if m.Reply == "" {
		n := d.noReply.Add(1)
		if d.drops.noReplyLog.allow(now) {
			d.log.Warn("bounced job without reply subject dropped", "bytes", len(m.Data), "dropped", n)
		}
		return
	}
	b, err := parseBounce(m.Header, m.Reply, d.bounceRules(), now)
	if errors.Is(err, errBounceReply) {
		d.refuseReply(m, "bounce", err, now)
		return
	}
	if err != nil {
		n := d.drops.badBounces.Add(1)
		if d.drops.bounceLog.allow(now) {
			d.log.Warn("bounce refused", "err", err, "refused", n)
		}
		d.reply(m, schema.Errorf(schema.CodeInternal, "the job's failed attempt came back malformed (%v); not retried", err))
		return
	}
	h := m.Header
	failedDep := h.Get(schema.HeaderFailedDeployment)
	for _, k := range errorHeaders {
		delete(h, k)
	}
	p, e, tierName := b.p, b.err, b.tier
	p.msg = m
	p.sel = d.selectionOf(h)
	if d.cfg.Affinity {
		p.key = retryKey(h)
	}

	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		d.handBack(m, cmpOr(p.origin, tierName))
		return
	}
	if budget := d.cfg.Policy.budget(); p.attempts > budget {
		d.mu.Unlock()
		e.Message += " (after " + strconv.Itoa(p.attempts) + " attempts, over the job's budget of " + strconv.Itoa(budget) + ")"
		d.reply(m, e)
		return
	}
	t := d.tiers[tierName]
	if t != nil && b.refused != "" {
		d.requeueRefused(t, p, b.refused, e, now) // unlocks d.mu
		return
	}
	if out, fails, ok := d.precallSkip(t, &p, e, failedDep, now); ok {
		d.mu.Unlock()
		d.send(out, fails)
		return
	}
	if t != nil && p.tierAttempts <= d.cfg.Policy.retriesFor(e.Code, failedDep) {
		delay := d.cfg.Policy.backoff(p.tierAttempts, e.RetryAfter())
		if due := now.Add(delay); due.Before(p.deadline) {
			if !t.room(&p, d.cfg.MaxQueue) {
				d.mu.Unlock()
				d.reply(m, schema.Errorf(schema.CodeOverloaded, "tier %q has %d jobs waiting or waiting to retry, the most this dispatcher holds", tierName, d.cfg.MaxQueue).WithRetryAfter(time.Second))
				return
			}
			d.delayed.add(delayedJob{due: due, tier: tierName, job: p})
			*t.heldOf(&p)++
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

// requeueRefused takes back a job worker id refused at its deployment's
// usage limit. No attempt was made: the job goes back to the front of its
// tier's queue, where it waits for a deployment with room (the refusing
// worker gets nothing from this dispatcher until the refusal's
// retry-after); when no deployment will have room before the job's
// deadline it falls back or is answered rate_limited, as a new job would
// be. Called with d.mu held; it unlocks it.
func (d *Dispatcher) requeueRefused(t *tier, p pending, id string, e *schema.Error, now time.Time) {
	if _, w := t.find(id); w != nil && w.limited() {
		if until := now.Add(e.RetryAfter()); until.After(w.refusedUntil) {
			w.refusedUntil = until
		}
	}
	if blocked, frees := t.rateBlocked(now); blocked && !frees.Before(p.deadline) {
		if p.msg.Header.Get(schema.HeaderDisableFallbacks) != "true" {
			if out, fails, ok := d.fallback(p, t.name, schema.CodeRateLimited, now, nil, nil); ok {
				d.mu.Unlock()
				d.send(out, fails)
				return
			}
		}
		d.mu.Unlock()
		d.reply(p.msg, rateLimited(t.name, now, frees))
		return
	}
	t.queueOf(&p).pushFront(p)
	out, fails := d.drain(t, now, nil, nil)
	d.mu.Unlock()
	d.send(out, fails)
}

func (d *Dispatcher) bounceRules() bounceRules {
	return bounceRules{subjects: d.cfg.Subjects, policy: &d.cfg.Policy, defaultTimeout: d.cfg.DefaultTimeout, maxTimeout: d.cfg.MaxTimeout}
}

// fallback moves p to the next fallback tier that has a worker not
// cooling, and room under its usage limits before p's deadline, if any,
// and dispatches what it can there. Called with d.mu
// held.
func (d *Dispatcher) fallback(p pending, current, code string, now time.Time, out []dispatch, fails []failed) ([]dispatch, []failed, bool) {
	origin := cmpOr(p.origin, current)
	list := d.cfg.Policy.fallbacks(origin, code)
	for i := p.fallbacks; i < len(list) && i < d.cfg.Policy.maxFallbacks(); i++ {
		name := list[i]
		t, model := d.fallbackTier(name, p.msg)
		if t == nil || t.name == current || len(t.workers) == 0 {
			continue
		}
		if cooling, _ := t.allCooling(now); cooling {
			continue
		}
		if blocked, frees := t.rateBlocked(now); blocked && !frees.Before(p.deadline) {
			continue // at its usage limits until too late
		}
		if !t.canTake(&p, now) {
			continue // no deployment there takes the job's tags or fits its prompt
		}
		if !t.room(&p, d.cfg.MaxQueue) {
			continue // full: falling back must not grow a queue past its bound
		}
		p.origin, p.fallbacks, p.tierAttempts, p.exclude = origin, i+1, 0, nil
		setRequested(p.msg, t, model)
		t.queueOf(&p).pushFront(p)
		d.fallbacks.Add(1)
		d.log.Debug("fallback", "from", current, "to", t.name, "code", code)
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
		fails = d.requeue(t, w, p, now, fails, false)
	}
	return fails
}

// lostInTransit gives up on the jobs forwarded to w that its beats still
// do not show received lostAfter after they left: the worker's connection
// was down when they reached the NATS server, or the dispatcher's own
// connection broke with them unwritten (a cluster node failing over loses
// what it held). They are dispatched again as a lost worker's are, and no
// longer count against the worker's slots: otherwise a worker whose last
// jobs were lost looked full to this dispatcher for ever. Should a job
// arrive after all, it runs twice; its producer keeps the first answer.
// Called with d.mu held, after w.seen is the beat's.
func (d *Dispatcher) lostInTransit(t *tier, w *worker, now time.Time, fails []failed) []failed {
	if w.unseen() == 0 {
		return fails
	}
	after := w.lostAfter()
	if p := w.jobs[max(w.seen, w.lostTo)+1]; p != nil && now.Sub(p.sent) < after {
		// The oldest job not yet received is recent, so are the later
		// ones: no scan on the beats of a busy worker.
		return fails
	}
	n := 0
	for seq, p := range w.jobs {
		if seq <= w.seen || now.Sub(p.sent) < after {
			continue
		}
		// Sequences follow the order jobs were sent in: every older one
		// not received is lost too, so unseen may start above seq.
		delete(w.jobs, seq)
		w.lostTo = max(w.lostTo, seq)
		fails = d.requeue(t, w, p, now, fails, true)
		n++
	}
	if n > 0 {
		d.log.Warn("jobs lost on the way to a worker, dispatched again", "worker", w.hb.Worker, "tier", t.name, "jobs", n, "after", after)
	}
	return fails
}

// lostAfter is how long a job may take to show as received in the
// worker's beats before it counts as lost: two beat intervals and a second
// for a slow machine. A job is not that long in flight on a working
// connection.
func (w *worker) lostAfter() time.Duration {
	iv := time.Duration(w.hb.IntervalMs) * time.Millisecond
	if iv <= 0 {
		iv = time.Second
	}
	return 2*iv + time.Second
}

// requeue puts back in front of the tier's queue a job that worker w held
// and will not answer (the worker was lost, or the job never reached it:
// inTransit), or fails it when its deadline passed or it was a stream.
// Called with d.mu held.
func (d *Dispatcher) requeue(t *tier, w *worker, p *pending, now time.Time, fails []failed, inTransit bool) []failed {
	switch {
	case !p.deadline.After(now) && inTransit:
		fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeTimeout, "the job was lost on the way to worker %s, and its deadline has passed", w.hb.Worker)})
	case !p.deadline.After(now):
		fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeTimeout, "worker %s was lost holding the job, and its deadline has passed", w.hb.Worker)})
	case p.msg.Header.Get(schema.HeaderStreaming) == "true" && inTransit:
		// It never started, as far as the beats tell; but if it only
		// arrived late, a second run would interleave its chunks with
		// the first's.
		fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeConnection, "the stream's job was lost on the way to worker %s", w.hb.Worker)})
	case p.msg.Header.Get(schema.HeaderStreaming) == "true":
		fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeConnection, "worker %s was lost in the middle of the stream", w.hb.Worker)})
	default:
		q := *p
		// The job goes out again with new headers while the first
		// forward of it may still be publishing the old ones (it runs
		// without the lock): stamp a copy, never the message shared
		// with that forward.
		m := *p.msg
		m.Header = maps.Clone(p.msg.Header)
		q.msg = &m
		q.attempts++
		q.tierAttempts++
		t.queueOf(&q).pushFront(q)
		d.redispatched.Add(1)
	}
	return fails
}
