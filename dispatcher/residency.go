package dispatcher

import (
	"time"

	"github.com/llmq/llmq/schema"
)

// Residency-aware routing. Workers whose host loads models in and out of
// memory (Ollama) say in their beats whether their model is loaded
// (schema.Heartbeat.Cold) and how long their cold calls took to load it
// (LoadMs). Before any strategy picks, residency narrows the candidates,
// so that it works with every strategy:
//
//   - warm candidates (model loaded, or unknown: every cloud deployment)
//     are taken over cold ones;
//   - when every candidate is cold and the tier has no warm worker, the
//     job goes to a cold one on the least busy host (it must load
//     somewhere);
//   - when the tier's warm workers are full — for SpreadAfter since the
//     job came: this dispatcher's view of them may be a beat behind — a
//     cold candidate on an idle host (no job on any of its workers, of any tier, for HostIdleFor)
//     takes the job: waiting on a busy host while a GPU sits idle is the
//     worse bet once load keeps coming, and that is how a tier spreads to
//     more hosts under load;
//   - otherwise a cold candidate takes the job only when it is expected
//     to finish sooner there — its load time, plus a call, plus a call's
//     time for the host's running calls of another model to drain before
//     Ollama can evict it — than by waiting for a warm slot: the jobs
//     ahead of it over the warm workers' slots, times their recent
//     latency, plus a call. Else the job waits.
//
// A worker just sent a job while cold counts as warm for its load time
// plus a second (the beats that follow say so once the call runs).

// DefaultLoadTime is what a model load is taken to cost until a worker of
// the tier has measured one.
const DefaultLoadTime = 3 * time.Second

// HostIdleFor is how long a host must have run no job, on any of its
// workers, to count as idle.
const HostIdleFor = time.Second

// SpreadAfter is the least time a job waits for a warm worker of its tier
// before it may go to a cold host while warm ones exist.
const SpreadAfter = 250 * time.Millisecond

// cold reports whether the worker's host has not loaded its model, as far
// as this dispatcher knows at now.
func (w *worker) cold(now time.Time) bool {
	return w.hb.Cold && !now.Before(w.warmUntil)
}

// loadTime is the worker's measured load time, else DefaultLoadTime.
func (w *worker) loadTime() time.Duration {
	if w.hb.LoadMs > 0 {
		return time.Duration(w.hb.LoadMs * float64(time.Millisecond))
	}
	return DefaultLoadTime
}

// hostKey names the worker's host: its api_base, else the worker itself.
func (w *worker) hostKey() string {
	if w.hb.Host != "" {
		return w.hb.Host
	}
	return "\x00" + w.hb.Worker
}

// running reports whether the worker has a job now, as far as this
// dispatcher knows: in its beat (the host's, for a worker sharing a host
// budget), or sent since.
func (w *worker) running() bool {
	if w.unseen() > 0 {
		return true
	}
	if w.hb.HostSlots > 0 {
		return w.hb.HostInFlight > 0
	}
	return w.hb.InFlight > 0
}

// noteBusy records that the worker had a job at now (see hostIdle).
func (w *worker) noteBusy(now time.Time) {
	if w.running() {
		w.busyAt = now
	}
}

// residency narrows cands (usable workers of t with a free slot) by model
// residency, as the comment above says; it returns cands unchanged when
// residency is off or every candidate is warm, and an empty list when the
// job should wait for a warm worker. It reorders cands. Called with d.mu
// held.
func (d *Dispatcher) residency(t *tier, cands []*worker, p *pending, now time.Time) []*worker {
	if d.cfg.NoResidency || len(cands) == 0 {
		return cands
	}
	warm := 0
	for i, w := range cands {
		if !w.cold(now) {
			cands[warm], cands[i] = cands[i], cands[warm]
			warm++
		}
	}
	switch {
	case warm == len(cands):
		return cands
	case warm > 0:
		return cands[:warm]
	}
	// Every candidate is cold. What the tier's warm workers offer:
	var slots, busy int
	var lat float64
	n := 0
	for _, w := range t.workers {
		if w.hb.State != schema.StateReady || w.cooling(now) || w.cold(now) {
			continue
		}
		slots += w.hb.Capacity
		busy += w.estimate()
		if w.hb.LatencyMs > 0 {
			lat += w.hb.LatencyMs
			n++
		}
	}
	if slots == 0 {
		return leastBusyHosts(cands, d.hostStates(cands, now))
	}
	if p == nil || now.Sub(p.arrived) < SpreadAfter {
		// The warm workers may only look full: this dispatcher counts
		// the jobs it sent until a beat says they ended, and beats lag.
		// A job waits SpreadAfter for a warm slot before it may go cold.
		return cands[:0]
	}
	hs := d.hostStates(cands, now)
	if idle := idleHosts(cands, hs); len(idle) > 0 {
		return idle
	}
	if n == 0 {
		return cands[:0] // no latency known: wait for the warm workers
	}
	call := time.Duration(lat / float64(n) * float64(time.Millisecond))
	ahead := t.queue.len() + max(busy-slots, 0)
	viaWarm := time.Duration(ahead+1)*call/time.Duration(slots) + call
	best := -1
	var bestAt time.Duration
	for i, w := range cands {
		at := w.loadTime() + call
		if hs[w.hostKey()].busy {
			at += call
		}
		if best < 0 || at < bestAt {
			best, bestAt = i, at
		}
	}
	if bestAt < viaWarm {
		cands[0] = cands[best]
		return cands[:1]
	}
	return cands[:0]
}

// picked notes that w was chosen at now: a cold worker counts as warm
// while its load runs.
func (d *Dispatcher) picked(w *worker, now time.Time) {
	if w == nil {
		return
	}
	w.busyAt = now
	if w.hb.Cold && !now.Before(w.warmUntil) {
		w.warmUntil = now.Add(w.loadTime() + time.Second)
	}
}

// hostState is what residency needs of a candidate's host: whether any
// of its workers, of any tier, had a job within HostIdleFor, and the jobs
// running on it.
type hostState struct {
	busy bool
	load int
}

// hostStates returns the state of the hosts of cands, in one pass over the
// fleet. Called with d.mu held.
func (d *Dispatcher) hostStates(cands []*worker, now time.Time) map[string]*hostState {
	hs := make(map[string]*hostState, len(cands))
	for _, w := range cands {
		hs[w.hostKey()] = &hostState{}
	}
	for _, t := range d.tiers {
		for _, v := range t.workers {
			h := hs[v.hostKey()]
			if h == nil {
				continue
			}
			if v.running() || now.Sub(v.busyAt) < HostIdleFor {
				h.busy = true
			}
			if v.hb.HostSlots > 0 {
				n := v.hb.HostInFlight + v.unseen() // the host's own count is in each of its workers' beats
				h.load = max(h.load, n)
				continue
			}
			h.load += v.estimate()
		}
	}
	return hs
}

// idleHosts keeps, in cands' array, the candidates whose host is idle.
func idleHosts(cands []*worker, hs map[string]*hostState) []*worker {
	out := cands[:0]
	for _, w := range cands {
		if !hs[w.hostKey()].busy {
			out = append(out, w)
		}
	}
	return out
}

// leastBusyHosts keeps, in cands' array, the candidates on idle hosts,
// else those whose host runs the fewest jobs.
func leastBusyHosts(cands []*worker, hs map[string]*hostState) []*worker {
	if idle := idleHosts(cands, hs); len(idle) > 0 {
		return idle
	}
	least := -1
	for _, w := range cands {
		if l := hs[w.hostKey()].load; least < 0 || l < least {
			least = l
		}
	}
	out := cands[:0]
	for _, w := range cands {
		if hs[w.hostKey()].load == least {
			out = append(out, w)
		}
	}
	return out
}
