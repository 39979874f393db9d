package dispatcher

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
)

// TestReconcileLargeFleetState checks reconcile against a plain scan with
// the many held jobs that take the sorted path.
func TestReconcileLargeFleetState(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 3, 16, 17, 500} {
		w := &worker{jobs: map[uint64]*pending{}, seen: uint64(2 * n)}
		for seq := uint64(1); seq <= uint64(3*n)+1; seq++ {
			w.jobs[seq] = &pending{}
		}
		var held []uint64
		for seq := uint64(1); seq <= uint64(2*n); seq++ {
			if rng.IntN(2) == 0 {
				held = append(held, seq)
			}
		}
		rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
		beat := append([]uint64(nil), held...)
		w.hb = schema.Heartbeat{Jobs: map[string][]uint64{"d": held}}
		w.reconcile("d", time.Now())
		for seq := uint64(1); seq <= uint64(3*n)+1; seq++ {
			want := seq > w.seen // not in the beat yet: kept
			for _, h := range beat {
				want = want || h == seq
			}
			if _, got := w.jobs[seq]; got != want {
				t.Fatalf("n=%d: job %d kept = %v, want %v", n, seq, got, want)
			}
		}
		for i := range beat {
			if held[i] != beat[i] {
				t.Fatalf("n=%d: reconcile reordered the heartbeat's jobs", n)
			}
		}
	}
}

// BenchmarkReconcile is a beat from a worker holding 4096 of this
// dispatcher's jobs.
func BenchmarkReconcile(b *testing.B) {
	const n = 4096
	held := make([]uint64, n)
	for i := range held {
		held[i] = uint64(n - i)
	}
	w := &worker{jobs: map[uint64]*pending{}, seen: n}
	for seq := uint64(1); seq <= n; seq++ {
		w.jobs[seq] = &pending{}
	}
	w.hb = schema.Heartbeat{Jobs: map[string][]uint64{"d": held}}
	b.ResetTimer()
	for b.Loop() {
		w.reconcile("d", time.Now())
	}
}
