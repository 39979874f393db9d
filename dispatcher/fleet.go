package dispatcher

import (
	"time"

	"github.com/llmq/llmq/schema"
)

// worker is what a dispatcher knows of one worker.
type worker struct {
	hb       schema.Heartbeat
	subject  string
	lastSeen time.Time
	// sent counts the jobs this dispatcher forwarded to the worker;
	// hb.Received[self] is how many of them the last beat included.
	sent uint64
	seen uint64
}

// estimate is the worker's in-flight count as this dispatcher sees it: the
// last beat's, plus this dispatcher's jobs sent since that beat was taken.
func (w *worker) estimate() int {
	unseen := 0
	if w.sent > w.seen {
		unseen = int(w.sent - w.seen)
	}
	return w.hb.InFlight + unseen
}

func (w *worker) free() int { return w.hb.Capacity - w.estimate() }

func (w *worker) ready() bool { return w.hb.State == schema.StateReady && w.free() > 0 }

func (w *worker) latency() float64 {
	if w.hb.MsPerToken > 0 {
		return w.hb.MsPerToken
	}
	return w.hb.LatencyMs
}

// expired reports whether the worker missed three beats.
func (w *worker) expired(now time.Time) bool {
	iv := time.Duration(w.hb.IntervalMs) * time.Millisecond
	if iv <= 0 {
		iv = time.Second
	}
	return now.Sub(w.lastSeen) > 3*iv
}

// tier is one model group: its workers and the jobs waiting for them.
type tier struct {
	name       string
	configured bool
	workers    []*worker
	queue      queue
	// lastWorker is when the tier last had a live worker.
	lastWorker time.Time
}

// candidates returns the ready workers of the lowest order present, in buf.
func (t *tier) candidates(buf []*worker) []*worker {
	buf = buf[:0]
	best := 0
	for _, w := range t.workers {
		if !w.ready() {
			continue
		}
		o := order(w.hb.Order)
		switch {
		case len(buf) == 0 || o < best:
			buf, best = append(buf[:0], w), o
		case o == best:
			buf = append(buf, w)
		}
	}
	return buf
}

// order puts unset (0) after every set order, as LiteLLM tries ordered
// deployments first.
func order(o int) int {
	if o <= 0 {
		return int(^uint(0) >> 1)
	}
	return o
}

func (t *tier) find(id string) (int, *worker) {
	for i, w := range t.workers {
		if w.hb.Worker == id {
			return i, w
		}
	}
	return -1, nil
}

func (t *tier) remove(i int) {
	last := len(t.workers) - 1
	t.workers[i] = t.workers[last]
	t.workers[last] = nil
	t.workers = t.workers[:last]
}
