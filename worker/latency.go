package worker

import (
	"slices"
	"sync"
	"time"
)

// window keeps the latest calls' latencies: routing uses the recent past,
// not all-time averages. Samples older than ttl are left out (LiteLLM's
// routing_strategy_args.ttl), so a deployment idle that long is untried
// again for latency-based routing.
type window struct {
	mu       sync.Mutex
	latency  []float64   // ms
	perToken []float64   // ms per output token
	at       []time.Time // when each was added
	ttl      time.Duration
	next     int
	n        int
}

func newWindow(size int, ttl time.Duration) *window {
	return &window{latency: make([]float64, size), perToken: make([]float64, size), at: make([]time.Time, size), ttl: ttl}
}

func (w *window) add(ms float64, tokens int) {
	per := ms
	if tokens > 0 {
		per = ms / float64(tokens)
	}
	w.mu.Lock()
	w.latency[w.next] = ms
	w.perToken[w.next] = per
	w.at[w.next] = time.Now()
	w.next = (w.next + 1) % len(w.latency)
	if w.n < len(w.latency) {
		w.n++
	}
	w.mu.Unlock()
}

// medians returns the median latency and latency per token, and the number
// of samples.
func (w *window) medians() (latency, perToken float64, n int) {
	var oldest time.Time
	if w.ttl > 0 {
		oldest = time.Now().Add(-w.ttl)
	}
	w.mu.Lock()
	l := make([]float64, 0, w.n)
	p := make([]float64, 0, w.n)
	for i := range w.n {
		if !w.at[i].Before(oldest) {
			l = append(l, w.latency[i])
			p = append(p, w.perToken[i])
		}
	}
	w.mu.Unlock()
	return median(l), median(p), len(l)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}
