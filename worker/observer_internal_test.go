package worker

import (
	"testing"
)

func TestWindowQuantiles(t *testing.T) {
	t.Parallel()
	w := newWindow(100, 0)
	if qs, n := w.quantiles(0.5, 0.99); n != 0 || qs[0] != 0 || qs[1] != 0 {
		t.Fatalf("empty window: %v, %d", qs, n)
	}
	for i := 100; i >= 1; i-- { // 1..100 ms, out of order
		w.add(float64(i), 1)
	}
	qs, n := w.quantiles(0.5, 0.9, 0.99, 1)
	if n != 100 || qs[0] != 50 || qs[1] != 90 || qs[2] != 99 || qs[3] != 100 {
		t.Fatalf("quantiles %v of %d samples, want [50 90 99 100] of 100", qs, n)
	}
	w.add(1000, 1) // the window keeps the last 100: the first added (100 ms) falls out
	if qs, _ := w.quantiles(0, 0.99, 1); qs[0] != 1 || qs[1] != 99 || qs[2] != 1000 {
		t.Fatalf("after overflow: %v", qs)
	}
}
