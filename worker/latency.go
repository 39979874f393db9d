package worker

import (
	"slices"
	"sync"
)

// window keeps the latest calls' latencies: routing uses the recent past,
// not all-time averages.
type window struct {
	mu       sync.Mutex
	latency  []float64 // ms
	perToken []float64 // ms per output token
	next     int
	n        int
}

func newWindow(size int) *window {
	return &window{latency: make([]float64, size), perToken: make([]float64, size)}
}

func (w *window) add(ms float64, tokens int) {
	per := ms
	if tokens > 0 {
		per = ms / float64(tokens)
	}
	w.mu.Lock()
	w.latency[w.next] = ms
	w.perToken[w.next] = per
	w.next = (w.next + 1) % len(w.latency)
	if w.n < len(w.latency) {
		w.n++
	}
	w.mu.Unlock()
}

// medians returns the median latency and latency per token, and the number
// of samples.
func (w *window) medians() (latency, perToken float64, n int) {
	w.mu.Lock()
	n = w.n
	l := slices.Clone(w.latency[:n])
	p := slices.Clone(w.perToken[:n])
	w.mu.Unlock()
	return median(l), median(p), n
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}
