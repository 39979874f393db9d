package worker

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// Cancelling a job sent with schema.HeaderControl: its producer publishes
// to Subjects.Cancel(reply), which every worker hears. The worker running
// the job cancels its provider call; a cancel that comes before any worker
// holds the job (still queued in a dispatcher, or on its way) is kept for
// a while, so that the worker that gets the job drops it unrun. Nothing is
// sent for a job nobody cancels.
const (
	// maxEarlyCancels bounds the cancels kept for jobs not held yet: any
	// producer can send cancels, so a flood evicts the oldest (whose job
	// then runs, as it would have without a cancel).
	maxEarlyCancels = 4096
	// earlyCancelTTL is how long such a cancel is kept: a job may wait in
	// a dispatcher up to its deadline (10 minutes by default).
	earlyCancelTTL = 10 * time.Minute
)

// cancels are the worker's cancellable jobs by reply subject, and the
// cancels that came before their job.
type cancels struct {
	mu    sync.Mutex
	jobs  map[string][]*cancelEntry
	early map[string]time.Time
	ring  []string // early's keys in arrival order, for eviction
	next  int
}

type cancelEntry struct{ cancel context.CancelCauseFunc }

// take reports whether a cancel for reply came before its job, forgetting
// it.
func (c *cancels) take(reply string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takeLocked(reply, now)
}

func (c *cancels) takeLocked(reply string, now time.Time) bool {
	at, ok := c.early[reply]
	if ok {
		delete(c.early, reply)
	}
	return ok && now.Sub(at) < earlyCancelTTL
}

// track registers a running job's cancel function under its reply
// subject until the returned untrack is called; a cancel that already
// came cancels it at once.
func (c *cancels) track(reply string, cancel context.CancelCauseFunc, now time.Time) (untrack func()) {
	e := &cancelEntry{cancel: cancel}
	c.mu.Lock()
	if c.takeLocked(reply, now) {
		c.mu.Unlock()
		cancel(errProducerGone)
		return func() {}
	}
	if c.jobs == nil {
		c.jobs = map[string][]*cancelEntry{}
	}
	c.jobs[reply] = append(c.jobs[reply], e)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		es := c.jobs[reply]
		for i, x := range es {
			if x == e {
				es = append(es[:i], es[i+1:]...)
				break
			}
		}
		if len(es) == 0 {
			delete(c.jobs, reply)
		} else {
			c.jobs[reply] = es
		}
	}
}

// waiting counts the cancels kept for jobs not held yet.
func (c *cancels) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.early)
}

// cancel cancels the jobs running under reply, or keeps the cancel for
// the job to come.
func (c *cancels) cancel(reply string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if es := c.jobs[reply]; len(es) > 0 {
		for _, e := range es {
			e.cancel(errProducerGone)
		}
		return
	}
	if c.early == nil {
		c.early = make(map[string]time.Time)
		c.ring = make([]string, maxEarlyCancels)
	}
	if _, ok := c.early[reply]; !ok {
		if old := c.ring[c.next]; old != "" {
			delete(c.early, old)
		}
		c.ring[c.next] = reply
		c.next = (c.next + 1) % len(c.ring)
	}
	c.early[reply] = now
}

// onCancel takes a message on Subjects.CancelWildcard. Any client allowed
// to publish there may send anything: a subject naming no valid reply is
// dropped and counted.
func (w *Worker) onCancel(m *nats.Msg) {
	reply, ok := w.cfg.Subjects.Cancelled(m.Subject)
	if !ok || w.cfg.Subjects.CheckReply(reply) != nil {
		w.droppedCancels.Add(1)
		return
	}
	w.cancels.cancel(reply, time.Now())
}

// cancelledEarly drops a cancellable job whose producer cancelled it before
// this worker got it; it reports whether it did. The producer is gone, so
// nothing is sent.
func (w *Worker) cancelledEarly(m *nats.Msg) bool {
	if m.Header.Get(schema.HeaderControl) != "true" || !w.cancels.take(m.Reply, time.Now()) {
		return false
	}
	w.rate.leave()
	w.jobFailed(schema.CodeCancelled)
	w.log.Debug("job cancelled before it started")
	return true
}
