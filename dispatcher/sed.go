package dispatcher

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/llmq/llmq/schema"
)

// Shortest expected delay (config.ShortestExpectedDelay) sends each job
// where it is expected to finish first. A worker's expected delay for one
// more job is
//
//	max(1, (jobs it holds + jobs waiting for it + 1) / slots) × its latency per job
//
// — one call's time when a slot is free, else the wait for the slots to
// work through the jobs ahead (each frees after a call's time, on
// average one every latency ÷ slots) plus the call —
// where the jobs it holds are its last beat's in-flight count plus the
// jobs this dispatcher sent since that beat (as least-busy counts them, so
// that several dispatchers do not all pile on the worker that looked
// idlest), the jobs waiting for it are those of this dispatcher's queue
// that the same rule already sent its way in this pass (counted once for
// each dispatcher holding jobs there, see load), and its latency
// is the median of its recent calls (its beats), else what this dispatcher
// observed of its own jobs there (forward to the beat that shows them
// done), else the last figure known. A worker never measured is taken to
// be as fast as the fastest known one, so that it gets tried.
//
// Unlike the other strategies it may decline a free slot: when a busy
// worker is expected to finish the job sooner than any free one — a fast
// GPU host about to free a slot, against a free CPU host four times
// slower — the job waits in the queue for it. Ties (see shortestDelay)
// go to the worker with the lowest share of its slots in use, then to the
// one this dispatcher prefers, then at random. With several dispatchers
// the free slots a beat shows are shared out among them (see mine).

// observeWeight is the weight of the newest sample in the dispatcher's own
// moving average of a worker's time per job.
const observeWeight = 0.2

// perJob is w's latency per job in ms as this dispatcher knows it, 0 when
// unknown.
func (w *worker) perJob() float64 {
	switch {
	case w.hb.Samples > 0 && w.hb.LatencyMs > 0:
		return w.hb.LatencyMs
	case w.observedMs > 0:
		return w.observedMs
	}
	return w.lastLatencyMs
}

// observe records that one of this dispatcher's jobs, sent at sent, was
// seen finished at now.
func (w *worker) observe(sent, now time.Time) {
	if sent.IsZero() {
		return
	}
	ms := float64(now.Sub(sent)) / float64(time.Millisecond)
	if ms < 0 {
		return
	}
	if w.observedMs == 0 {
		w.observedMs = ms
		return
	}
	w.observedMs += observeWeight * (ms - w.observedMs)
}

// delay is w's expected delay for one more job, with unknown (ms) standing
// for a latency never measured.
func (w *worker) delay(unknown float64) float64 {
	lat := w.perJob()
	if lat <= 0 {
		lat = unknown
	}
	return max(1, w.load()) * lat
}

// load is w's jobs, with one more, per slot. The jobs waiting for w in
// this dispatcher's queue count once for each dispatcher whose queued jobs
// may be served before the one being placed (w.ahead, this one included):
// the others' queues, which this one cannot see, are taken to hold as many
// as its own.
func (w *worker) load() float64 {
	return float64(w.estimate()+w.held*max(1, w.ahead)+1) / float64(w.hb.Capacity)
}

// setAhead sets w.ahead for placing p (nil: a job not queued) at now:
// the dispatchers whose queued jobs may be served on w before p, this one
// (id) included. Free slots go to the oldest queues first (see share), so
// those are the dispatchers whose queue w's last beat shows older than p
// (queue_age_us, aged since the beat). A worker whose beats carry no queue
// ages counts every dispatcher holding jobs on it (w.peers).
func (w *worker) setAhead(p *pending, id string, now time.Time) {
	if p == nil || len(w.hb.QueueAgeUs) == 0 {
		w.ahead = w.peers
		return
	}
	// p's age when the beat was taken (negative: it came later).
	age := now.Sub(p.arrived).Microseconds() - now.Sub(w.lastSeen).Microseconds()
	w.ahead = 1
	for d, us := range w.hb.QueueAgeUs {
		if d != id && us > age {
			w.ahead++
		}
	}
}

// fastestKnown is the lowest latency per job known among t's workers, 1
// when none is known (then delays compare jobs per slot alone).
func (t *tier) fastestKnown() float64 {
	best := 0.0
	for _, w := range t.workers {
		if l := w.perJob(); l > 0 && (best == 0 || l < best) {
			best = l
		}
	}
	if best == 0 {
		return 1
	}
	return best
}

// nearDelay is how much longer than the shortest an expected delay may be
// and still count as a tie: latency figures are medians of noisy calls,
// and without it every dispatcher would send to the worker whose median
// happens to be lowest.
const nearDelay = 0.05

// waitMargin is how much sooner than on the best free worker a job must be
// expected to finish on a busy one to wait for it: a busy worker's delay
// is an average over its slots, and a worker's median latency also
// reflects the jobs it happened to get, so a small advantage is not worth
// leaving a slot idle.
const waitMargin = 0.1

// shortestDelay picks, among cands (the free workers p may go to), the one
// with the shortest expected delay; or, when a busy worker of the same
// order that p may go to is expected to finish p sooner by waitMargin,
// returns that one as wait and no worker: p should wait for it — unless p
// has already waited as long as the best free worker would take. delay
// is the shortest expected delay.
//
// Delays within nearDelay of the shortest tie; among ties the worker with
// the lowest share of its slots in use wins, then the one this dispatcher
// prefers (a hash of salt, the dispatcher's, and the worker's host: each
// dispatcher prefers its own among equal workers, so that two that learn
// of free slots from the same beats do not both fill the same one), then
// one at random. Called with d.mu held.
func (t *tier) shortestDelay(cands []*worker, p *pending, now time.Time, salt uint64, id string, rng *rand.Rand) (w, wait *worker, delay float64) {
	if len(cands) == 0 {
		return nil, nil, 0
	}
	for _, w := range t.workers {
		w.setAhead(p, id, now)
	}
	unknown := t.fastestKnown()
	bestDelay := math.Inf(1)
	var contested *worker
	contestedDelay := math.Inf(1)
	for _, c := range cands {
		d := c.delay(unknown)
		if !c.mine(salt, id, now) {
			if d < contestedDelay {
				contested, contestedDelay = c, d
			}
			continue
		}
		bestDelay = min(bestDelay, d)
	}
	if contested != nil && contestedDelay*(1+nearDelay) < bestDelay {
		// The best slot is another dispatcher's for now: wait for it
		// (taken after contestGrace if its owner leaves it).
		return nil, contested, contestedDelay
	}
	limit := bestDelay * (1 + nearDelay)
	var best *worker
	var bestLoad float64
	var bestPref uint64
	ties := 0
	for _, c := range cands {
		if c.delay(unknown) > limit || c == contested || !c.mine(salt, id, now) {
			continue
		}
		l, pref := c.load(), mix(salt^hashString(c.place()))
		switch {
		case best == nil || l < bestLoad || (l == bestLoad && pref > bestPref):
			best, bestLoad, bestPref, ties = c, l, pref, 1
		case l == bestLoad && pref == bestPref:
			ties++
			if rng.IntN(ties) == 0 {
				best = c
			}
		}
	}
	if p != nil && float64(now.Sub(p.arrived))/float64(time.Millisecond) > bestDelay {
		// It has waited as long as the best free worker would take: a
		// busy worker that was to finish it sooner has not freed a slot
		// (calls stuck, or a latency figure that flatters it). Waiting
		// any longer could hold it until its deadline.
		return best, nil, bestDelay
	}
	o := order(cands[0].hb.Order)
	for _, v := range t.workers {
		if order(v.hb.Order) != o || slices.Contains(cands, v) || !t.waitable(v, p, now) {
			continue
		}
		if d := v.delay(unknown); d*(1+waitMargin) < bestDelay {
			best, bestDelay, wait = nil, d, v
		}
	}
	return best, wait, bestDelay
}

// waitable reports whether p may wait for w, a worker with no slot free
// for it now: w is ready and not resting, p may go to it, and its
// deployment is under its usage limits.
func (t *tier) waitable(w *worker, p *pending, now time.Time) bool {
	if !t.healthy(w, now) {
		return false
	}
	if p != nil && (!p.sel.allows(w) || p.excluded(w.hb.Deployment)) {
		return false
	}
	_, _, room := t.usage(w, now)
	return room
}

// drainDelay is drainQueue for shortest-expected-delay: it goes down the
// queue, sending each job to the free worker where it is expected to
// finish first, or leaving it to wait for a busy worker expected to finish
// it sooner (counted in that worker's held, so that the jobs behind it see
// the wait). A job behind one that waits may thus leave first, for a
// slower worker that is still its best choice. It stops when no worker
// has a free slot, or after a look-ahead of twice the tier's slots (plus
// a few): jobs further back would wait anyway. Called with d.mu held.
func (d *Dispatcher) drainDelay(t *tier, q *queue, now time.Time, out []dispatch, fails []failed) ([]dispatch, []failed) {
	limit := 16
	for _, w := range t.workers {
		limit += 2 * w.hb.Capacity
	}
	for i := 0; i < q.len() && i < limit; {
		p := q.at(i)
		if p.deadline.Before(now) {
			x := q.removeAt(i)
			fails = append(fails, failed{x.msg, schema.Errorf(schema.CodeTimeout, "no worker of tier %q was free before the job's deadline", t.name)})
			continue
		}
		w, wait := d.pickOrWait(t, p, now)
		switch {
		case w != nil:
			out = append(out, d.assign(t, w, q.removeAt(i), now))
		case wait != nil:
			wait.held++
			i++
		default:
			i = limit // no free slot for it: stop
		}
	}
	for _, w := range t.workers {
		w.held = 0
	}
	return out, fails
}

// contestGrace is how long after a beat the free slots it shows belong to
// the dispatchers they are shared out to (see mine); after it any
// dispatcher may take them.
const contestGrace = 5 * time.Millisecond

// mine reports whether this dispatcher (id hashed as self) may fill one
// more of w's free slots at now. Several dispatchers learn of a freed slot
// from the same beat, and each would fill it: one job then waits in the
// worker behind a whole call. So the slots a beat shows free are shared
// out among the dispatchers the beat names (its received counts, and this
// one), in an order drawn from the beat's sequence number that every
// dispatcher computes alike: this one may fill its share at once, and
// the others' only contestGrace after the beat, when their owners have
// had the time to fill them. With one dispatcher every slot is its own.
func (w *worker) mine(self uint64, id string, now time.Time) bool {
	n := len(w.hb.Received)
	if _, ok := w.hb.Received[id]; !ok {
		n++
	}
	if n <= 1 || now.Sub(w.lastSeen) > contestGrace {
		return true
	}
	free := w.hb.Capacity - w.hb.InFlight
	if free <= 0 {
		return true // sent to anyway only when the strategy chose to
	}
	return w.unseen() < w.share(free, n, self, id)
}

// share is how many of free slots of w's last beat are this dispatcher's
// (id, hashed as self) among the n dispatchers the beat names in received
// (and this one): an equal share each, the slots that do not divide going
// to the dispatchers whose queues waited longest, by the ages the beat
// reports (queue_age_us: the oldest job each may hold queued, as its last
// job here told), then in an order drawn from the beat's sequence number.
// A slot at a time, as most beats free, it goes to the oldest queue: the
// dispatchers share the worker as one queue in arrival order would, not
// one job each in turn, which leaves the jobs of the longer queue waiting
// a call longer. Every dispatcher computes the same shares from the same
// beat.
func (w *worker) share(free, n int, self uint64, id string) int {
	share := free / n
	if free%n == 0 {
		return share
	}
	seq := mix(w.hb.Seq)
	age, own := w.hb.QueueAgeUs[id], mix(self^seq)
	rank := 0
	for other := range w.hb.Received {
		if other == id {
			continue
		}
		if a := w.hb.QueueAgeUs[other]; a > age || (a == age && mix(hashString(other)^seq) > own) {
			rank++
		}
	}
	if rank < free%n {
		share++
	}
	return share
}
