package dispatcher

import (
	"slices"
	"time"

	"github.com/llmq/llmq/schema"
)

// worker is what a dispatcher knows of one worker.
type worker struct {
	hb       schema.Heartbeat
	subject  string
	lastSeen time.Time
	// sent counts the jobs this dispatcher forwarded to the worker (the
	// last one's Llmq-Job-Seq); seen is how many of them the last beat
	// included.
	sent uint64
	seen uint64
	// lostTo is the highest sequence given up as lost on the way to the
	// worker (see lostInTransit): jobs up to it no longer count as sent
	// but not yet received.
	lostTo uint64
	// jobs are the ones this dispatcher sent that the worker has not
	// finished as far as its beats tell, by sequence number: if the worker
	// is lost they are dispatched again.
	jobs map[uint64]*pending
	// refusedUntil is when the worker has room again after it refused a
	// job at its usage limit (the refusal's retry-after).
	refusedUntil time.Time
	// shared says another worker of the tier serves the same deployment
	// (see tier.reshare).
	shared bool
	// rel and tokens are the deployment's usage as collect last computed
	// it, for the usage-based strategy (see tier.usage).
	rel, tokens float64
	// held counts the queued jobs shortest-expected-delay left waiting for
	// the worker in the current pass over a queue (see sed.go).
	held int
	// peers is how many dispatchers held jobs on the worker in its last
	// beat, this one included (at least 1); ahead how many dispatchers'
	// queues come before the job shortest-expected-delay places (see
	// worker.setAhead).
	peers, ahead int
	// observedMs is this dispatcher's moving average of its jobs' time on
	// the worker, forward to the beat showing them done; lastLatencyMs
	// the last median latency a beat reported.
	observedMs, lastLatencyMs float64
	// busyAt is when the worker last had a job; warmUntil how long a
	// cold worker just sent a job counts as warm (residency.go).
	busyAt, warmUntil time.Time
}

// estimate is the worker's in-flight count as this dispatcher sees it: the
// last beat's, plus this dispatcher's jobs sent since that beat was taken.
func (w *worker) estimate() int { return w.hb.InFlight + w.unseen() }

// unseen counts the jobs this dispatcher sent that the worker's last beat
// did not show received, less those given up as lost on the way.
func (w *worker) unseen() int {
	if floor := max(w.seen, w.lostTo); w.sent > floor {
		return int(w.sent - floor)
	}
	return 0
}

func (w *worker) free() int { return w.hb.Capacity - w.estimate() }

func (w *worker) ready() bool { return w.hb.State == schema.StateReady && w.free() > 0 }

// cooling reports whether the worker rests after failures at now.
func (w *worker) cooling(now time.Time) bool {
	return w.hb.CoolingUntilMs > 0 && now.UnixMilli() < w.hb.CoolingUntilMs
}

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

// reconcile forgets the tracked jobs the beat shows finished: those the
// worker had received (sequence within Received) and no longer holds; it
// observes how long they took (see worker.observe).
func (w *worker) reconcile(self string, now time.Time) {
	w.peers = len(w.hb.Jobs)
	if _, ok := w.hb.Jobs[self]; !ok {
		w.peers++
	}
	if len(w.jobs) == 0 {
		return
	}
	held := w.hb.Jobs[self]
	if len(held) > 16 && !slices.IsSorted(held) {
		// Binary searches in a sorted copy: a beat costs O(n log n), not
		// O(n²), when a worker holds thousands of this dispatcher's jobs.
		held = slices.Clone(held)
		slices.Sort(held)
	}
	for seq := range w.jobs {
		if seq > w.seen {
			continue // not yet received when the beat was taken
		}
		if !holds(held, seq) {
			w.observe(w.jobs[seq].sent, now)
			delete(w.jobs, seq)
		}
	}
}

// holds reports whether held has seq; held is sorted when it is long.
func holds(held []uint64, seq uint64) bool {
	if len(held) > 16 {
		_, ok := slices.BinarySearch(held, seq)
		return ok
	}
	return slices.Contains(held, seq)
}

// tier is one model group: its workers and the jobs waiting for them.
type tier struct {
	name       string
	configured bool
	workers    []*worker
	queue      queue // interactive jobs
	batch      queue // batch jobs (Llmq-Priority: batch)
	// held and heldBatch count the tier's retries waiting out their
	// back-off in the dispatcher's delay heap; they count toward
	// Config.MaxQueue like the queues.
	held, heldBatch int
	// idleSince is when a learned tier was last seen with no worker and
	// no job (zero while it has some).
	idleSince time.Time
}

// queueOf is the queue p waits in.
func (t *tier) queueOf(p *pending) *queue {
	if p.batch {
		return &t.batch
	}
	return &t.queue
}

// heldOf is the count of held retries of p's priority.
func (t *tier) heldOf(p *pending) *int {
	if p.batch {
		return &t.heldBatch
	}
	return &t.held
}

// room reports whether one more job of p's priority fits under max:
// queued and held retries together.
func (t *tier) room(p *pending, max int) bool {
	return t.queueOf(p).len()+*t.heldOf(p) < max
}

// batchReserve is how many of a worker's slots batch jobs leave free for
// interactive ones: one, on a worker with more than one slot.
func batchReserve(w *worker) int {
	if w.hb.Capacity > 1 {
		return 1
	}
	return 0
}

// usable reports whether w may take a job at now: ready, and not cooling
// — except that a tier with one deployment is not cooled on rate limits
// alone (LiteLLM's rule: there is nowhere else to go).
func (t *tier) usable(w *worker, now time.Time) bool {
	if !w.ready() {
		return false
	}
	if w.cooling(now) {
		return w.hb.CoolingReason == schema.CodeRateLimited && t.deployments() == 1
	}
	return true
}

// deployments counts the distinct deployments of the tier's workers.
func (t *tier) deployments() int {
	n := 0
	for i, w := range t.workers {
		dup := false
		for _, v := range t.workers[:i] {
			if v.hb.Deployment == w.hb.Deployment {
				dup = true
				break
			}
		}
		if !dup {
			n++
		}
	}
	return n
}

// allCooling reports whether the tier has workers and every one is
// cooling, and when the first of them is back.
func (t *tier) allCooling(now time.Time) (bool, time.Time) {
	if len(t.workers) == 0 {
		return false, time.Time{}
	}
	var back time.Time
	for _, w := range t.workers {
		if w.hb.State != schema.StateReady {
			continue
		}
		if !w.cooling(now) || (w.hb.CoolingReason == schema.CodeRateLimited && t.deployments() == 1) {
			return false, time.Time{}
		}
		if until := time.UnixMilli(w.hb.CoolingUntilMs); back.IsZero() || until.Before(back) {
			back = until
		}
	}
	return !back.IsZero(), back
}

// candidates returns, in buf, the workers p may go to now: usable ones of
// the lowest order present whose deployment is under its usage limits,
// avoiding the deployments that already failed p while another deployment
// could still take it.
func (t *tier) candidates(buf []*worker, p *pending, now time.Time) []*worker {
	buf = t.collect(buf[:0], p, now, true)
	if len(buf) > 0 || p == nil || len(p.exclude) == 0 {
		return buf
	}
	for _, w := range t.workers {
		if !p.excluded(w.hb.Deployment) && w.hb.State == schema.StateReady && !w.cooling(now) && p.sel.allows(w) {
			return buf // another deployment will free up: wait for it
		}
	}
	return t.collect(buf, p, now, false)
}

func (t *tier) collect(buf []*worker, p *pending, now time.Time, avoid bool) []*worker {
	best := 0
	for _, w := range t.workers {
		if !t.usable(w, now) || (avoid && p != nil && p.excluded(w.hb.Deployment)) || (p != nil && !p.sel.allows(w)) {
			continue
		}
		if p != nil && p.batch && w.free() <= batchReserve(w) {
			continue
		}
		rel, tokens, room := t.usage(w, now)
		if !room {
			continue
		}
		w.rel, w.tokens = rel, tokens
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
	t.reshare()
}
