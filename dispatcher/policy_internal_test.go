package dispatcher

import (
	"testing"
	"time"
)

// TestBackoff checks the retry delays backoff/v4 computes: each within
// ±50% of the doubling step, capped at BackoffMax, and floored by the
// provider's Retry-After and the policy's RetryAfter even above the cap.
func TestBackoff(t *testing.T) {
	p := Policy{BackoffInitial: 100 * time.Millisecond, BackoffMax: time.Second}
	for n := 1; n <= 8; n++ {
		step := min(100*time.Millisecond<<(n-1), time.Second)
		for range 50 {
			d := p.backoff(n, 0)
			if d < step/2 || d > min(step*3/2, time.Second) {
				t.Fatalf("retry %d: %v, want %v…%v", n, d, step/2, min(step*3/2, time.Second))
			}
		}
	}
	if d := p.backoff(1, 3*time.Second); d != 3*time.Second {
		t.Fatalf("with Retry-After 3s: %v", d)
	}
	p.RetryAfter = 2 * time.Second
	if d := p.backoff(9, 0); d != 2*time.Second {
		t.Fatalf("with retry_after 2s: %v", d)
	}
	var zero Policy
	if d := zero.backoff(1, 0); d < 50*time.Millisecond || d > 150*time.Millisecond {
		t.Fatalf("default first delay %v, want 50…150ms", d)
	}
	if d := zero.backoff(1000, 0); d > 5*time.Second || d < 2500*time.Millisecond {
		t.Fatalf("default cap: %v", d)
	}
}
