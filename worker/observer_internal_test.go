package worker

import (
	"testing"
)

func TestWindowQuantiles(t *testing.T) {
	t.Parallel()
	w := newWindow(100)
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

func TestServiceVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, version, build string }{
		{"v1.2.3", "1.2.3", "v1.2.3"},
		{"0.1.0-3-gabc123-dirty", "0.1.0-3-gabc123-dirty", "0.1.0-3-gabc123-dirty"},
		{"dev", "0.0.0", "dev"},
		{"", "0.0.0", "dev"},
		{"1.0.0-01", "0.0.0", "1.0.0-01"}, // a leading zero micro refuses
		{"abc1234", "0.0.0", "abc1234"},
	} {
		if v, b := serviceVersion(tt.in); v != tt.version || b != tt.build {
			t.Errorf("serviceVersion(%q) = %q, %q; want %q, %q", tt.in, v, b, tt.version, tt.build)
		}
	}
}
