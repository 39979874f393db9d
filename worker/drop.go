package worker

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// dropLogEvery is the least time between two log lines about dropped jobs:
// a flood of hostile messages must not become a flood of log lines.
const dropLogEvery = 5 * time.Second

// rateLimit lets one event through per period. The zero value lets the
// first through.
type rateLimit struct{ next atomic.Int64 }

// allow reports whether an event at now may go through, every apart.
func (r *rateLimit) allow(now time.Time, every time.Duration) bool {
	n := r.next.Load()
	if now.UnixNano() < n {
		return false
	}
	return r.next.CompareAndSwap(n, now.Add(every).UnixNano())
}

// drop ends a job that cannot be answered at all: no reply subject, or one
// a worker must not publish on (broker.Subjects.CheckReply: too long for
// the server's protocol line, a wildcard, a system or llmq subject). It
// takes no slot and calls no provider; it is counted (Dropped in
// ServiceStats, and as a failed job with OutcomeDropped) and logged at most
// once every dropLogEvery.
func (w *Worker) drop(m *nats.Msg, why error) {
	n := w.dropped.Add(1)
	w.jobFailed(OutcomeDropped)
	if w.dropLog.allow(time.Now(), dropLogEvery) {
		w.log.Warn("job dropped: it cannot be answered", "why", why, "bytes", len(m.Data), "dropped_total", n)
	}
}
