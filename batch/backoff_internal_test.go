package batch

import (
	"testing"
	"time"
)

func TestRedeliveryDelay_GrowsPerDeliveryWithJitter(t *testing.T) {
	base := time.Second
	for delivered := uint64(1); delivered <= 12; delivered++ {
		step := min(base<<(delivered-1), maxRedeliveryDelay)
		for range 50 {
			d := redeliveryDelay(base, delivered, 0)
			if d < step/2 || d > min(step*3/2, maxRedeliveryDelay) {
				t.Fatalf("delivery %d: delay %v, want within ±50%% of %v and at most a minute", delivered, d, step)
			}
		}
	}
	// Steps double and jitter is ±50%: two deliveries later always waits longer.
	for delivered := uint64(1); delivered <= 4; delivered++ {
		for range 50 {
			if a, b := redeliveryDelay(base, delivered, 0), redeliveryDelay(base, delivered+2, 0); b <= a {
				t.Fatalf("delivery %d waits %v, delivery %d only %v", delivered, a, delivered+2, b)
			}
		}
	}
}

func TestRedeliveryDelay_RetryAfterIsTheFloor(t *testing.T) {
	if d := redeliveryDelay(time.Second, 1, 10*time.Second); d != 10*time.Second {
		t.Fatalf("delay %v, want the 10 s retry-after", d)
	}
	if d := redeliveryDelay(time.Second, 20, 2*time.Minute); d != 2*time.Minute {
		t.Fatalf("delay %v, want the 2 min retry-after over the minute cap", d)
	}
	if d := redeliveryDelay(time.Second, 1, time.Millisecond); d < 500*time.Millisecond {
		t.Fatalf("delay %v: a small retry-after must not shorten the back-off", d)
	}
}
