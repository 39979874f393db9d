package client

import (
	"testing"
	"time"
)

func TestRetryWait_GrowsWithJitterAndStaysWithinTheDeadline(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	deadline := now.Add(3 * time.Second)
	b := newRetryBackOff()
	var waits []time.Duration
	at := now
	for range 100 {
		w, ok := retryWait(b, at, deadline, 0)
		if !ok {
			break
		}
		waits = append(waits, w)
		at = at.Add(w)
	}
	if at.After(deadline) {
		t.Fatalf("waits %v end %v after the deadline", waits, at.Sub(deadline))
	}
	if len(waits) < 3 {
		t.Fatalf("waits %v: want several retries in 3 s", waits)
	}
	// Step n is 100 ms × 2^n with ±50% jitter, at most 5 s.
	for n, w := range waits {
		step := min(100*time.Millisecond<<n, 5*time.Second)
		if w < step/2 || w > step*3/2 {
			t.Errorf("wait %d = %v, want within ±50%% of %v", n+1, w, step)
		}
	}
	// Steps double and jitter is ±50%: every second wait is longer.
	for n := 2; n < len(waits); n++ {
		if waits[n] <= waits[n-2] {
			t.Errorf("wait %d = %v is not longer than wait %d = %v", n+1, waits[n], n-1, waits[n-2])
		}
	}
}

func TestRetryWait_FloorAndDeadline(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	if w, ok := retryWait(newRetryBackOff(), now, now.Add(10*time.Second), 2*time.Second); !ok || w != 2*time.Second {
		t.Fatalf("wait %v ok %v, want the 2 s floor", w, ok)
	}
	if _, ok := retryWait(newRetryBackOff(), now, now.Add(time.Second), 2*time.Second); ok {
		t.Fatal("a floor past the deadline must not be waited")
	}
	if _, ok := retryWait(newRetryBackOff(), now, now.Add(10*time.Millisecond), 0); ok {
		t.Fatal("a first wait of at least 50 ms must not be waited with 10 ms left")
	}
}
