package bench

import "time"

// SimJob is one job of a routing workload: when it arrives, from the
// start, and how many tokens it generates.
type SimJob struct {
	At     time.Duration `json:"at"`
	Tokens int           `json:"tokens"`
}

// SimOutcome is where an oracle sent each job and how long the job took
// from arrival to its last token. Host[i] is -1 for a job no host could
// queue (every queue full: the 503 a real host would answer).
type SimOutcome struct {
	Host    []int
	Latency []time.Duration
}

// SimulateJSQ routes jobs to hosts by join-the-shortest-queue with
// perfect, instant knowledge: each job, as it arrives, goes to the host
// with the fewest jobs (running and queued) per slot, the faster host on a
// tie, among hosts whose queue has room. Hosts serve their own FIFO queue
// on Parallel slots. extra is added to every service time (the timer
// overshoot the real hosts show), so the oracle runs on the same clock.
func SimulateJSQ(hosts []HostSpec, jobs []SimJob, meanTokens float64, extra time.Duration) SimOutcome {
	return simulate(hosts, jobs, extra, func(hs []*simHost, t time.Duration, job SimJob) int {
		best, bestLoad, bestMean := -1, 0.0, 0.0
		for i, h := range hs {
			if !h.admits(t) {
				continue
			}
			load := float64(len(h.ends)) / float64(h.spec.Parallel)
			mean := h.spec.Service(int(meanTokens)).Seconds()
			if best < 0 || load < bestLoad || (load == bestLoad && mean < bestMean) {
				best, bestLoad, bestMean = i, load, mean
			}
		}
		return best
	})
}

// SimulateECT routes each job to the host where it would finish earliest,
// knowing every host's slots, queue and every job's length: JSQ measured
// in time rather than in jobs, a stronger bound than SimulateJSQ for a
// router that binds a job to a host when it arrives.
func SimulateECT(hosts []HostSpec, jobs []SimJob, extra time.Duration) SimOutcome {
	return simulate(hosts, jobs, extra, func(hs []*simHost, t time.Duration, job SimJob) int {
		best := -1
		var bestEnd time.Duration
		for i, h := range hs {
			if !h.admits(t) {
				continue
			}
			_, end := h.schedule(t, job.Tokens)
			if best < 0 || end < bestEnd {
				best, bestEnd = i, end
			}
		}
		return best
	})
}

// simHost is a host in virtual time. A job bound to it starts when the
// first slot frees after the jobs bound before it (FIFO), so its start and
// end are known when it is bound.
type simHost struct {
	spec   HostSpec
	extra  time.Duration
	free   []time.Duration // when each slot is next free
	starts []time.Duration // start times of bound jobs not started by now, in order
	ends   []time.Duration // end times of bound jobs not ended by now
}

// advance forgets jobs started and ended by t.
func (h *simHost) advance(t time.Duration) {
	i := 0
	for i < len(h.starts) && h.starts[i] <= t {
		i++
	}
	h.starts = h.starts[i:]
	kept := h.ends[:0]
	for _, e := range h.ends {
		if e > t {
			kept = append(kept, e)
		}
	}
	h.ends = kept
}

// admits reports whether a job arriving at t gets a slot or a place in
// the queue.
func (h *simHost) admits(t time.Duration) bool {
	slot := h.slot()
	return h.free[slot] <= t || len(h.starts) < h.spec.MaxQueue
}

func (h *simHost) slot() int {
	s := 0
	for i, f := range h.free {
		if f < h.free[s] {
			s = i
		}
	}
	return s
}

// schedule returns when a job of tokens arriving at t would start and end.
func (h *simHost) schedule(t time.Duration, tokens int) (start, end time.Duration) {
	start = max(t, h.free[h.slot()])
	return start, start + h.spec.Service(tokens) + h.extra
}

// bind binds the job to the host and returns its end.
func (h *simHost) bind(t time.Duration, tokens int) time.Duration {
	start, end := h.schedule(t, tokens)
	h.free[h.slot()] = end
	if start > t {
		h.starts = append(h.starts, start)
	}
	h.ends = append(h.ends, end)
	return end
}

func simulate(hosts []HostSpec, jobs []SimJob, extra time.Duration, pick func([]*simHost, time.Duration, SimJob) int) SimOutcome {
	hs := make([]*simHost, len(hosts))
	for i, spec := range hosts {
		hs[i] = &simHost{spec: spec, extra: extra, free: make([]time.Duration, spec.Parallel)}
	}
	out := SimOutcome{Host: make([]int, len(jobs)), Latency: make([]time.Duration, len(jobs))}
	for j, job := range jobs {
		for _, h := range hs {
			h.advance(job.At)
		}
		i := pick(hs, job.At, job)
		out.Host[j] = i
		if i < 0 {
			continue
		}
		out.Latency[j] = hs[i].bind(job.At, job.Tokens) - job.At
	}
	return out
}
