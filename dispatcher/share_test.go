package dispatcher_test

import (
	"testing"
	"time"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
)

// beatOf returns the dispatcher's view of deployment's worker: its last
// beat.
func beatOf(d *dispatcher.Dispatcher, deployment string) (schema.Heartbeat, bool) {
	for _, ts := range d.Stats().Tiers {
		for _, w := range ts.Workers {
			if w.Deployment == deployment {
				return w, true
			}
		}
	}
	return schema.Heartbeat{}, false
}

// awaitBeat waits until the dispatcher's view of deployment's worker
// satisfies ok, and returns that beat.
func awaitBeat(t *testing.T, d *dispatcher.Dispatcher, deployment, what string, ok func(schema.Heartbeat) bool) schema.Heartbeat {
	t.Helper()
	deadline := time.Now().Add(wait)
	var last schema.Heartbeat
	for time.Now().Before(deadline) {
		if hb, found := beatOf(d, deployment); found {
			if last = hb; ok(hb) {
				return hb
			}
		}
		time.Sleep(time.Millisecond) // polling a snapshot; the beat has no other signal
	}
	t.Fatalf("the beats of %s never showed %s (last: seq %d, queue ages %v)", deployment, what, last.Seq, last.QueueAgeUs)
	return last
}

// awaitQueue waits until n interactive jobs wait in the dispatcher's queue
// of tier.
func awaitQueue(t *testing.T, d *dispatcher.Dispatcher, tier string, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, ts := range d.Stats().Tiers {
			if ts.Name == tier && ts.Queued == n {
				return
			}
		}
		time.Sleep(time.Millisecond) // polling a snapshot; the queue has no other signal
	}
	t.Fatalf("the queue of %s never held %d jobs", tier, n)
}

// TestDispatcher_QueueAge_RelayedByTheWorkersBeats: on each job it
// forwards a dispatcher tells the worker how long the oldest job left in
// its queue has waited; the worker's beats report, per dispatcher, that
// wait plus the time since (the age of the oldest job it may hold), so
// that dispatchers sharing the worker can give its free slots to the
// oldest queue. A job that leaves no queue behind reports the time since
// it was sent.
func TestDispatcher_QueueAge_RelayedByTheWorkersBeats(t *testing.T) {
	t.Parallel()
	e := setup(t)
	g := newGate()
	e.worker("t", "gpu", 1, g) // beats every 100 ms
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"t"}, Strategy: config.ShortestExpectedDelay})
	waitWorkers(t, d, "t", 1)
	done := make(chan []result, 1)
	go func() { done <- e.sendAll("t", 3, "q") }()
	g.awaitStarted(t, 1)
	awaitQueue(t, d, "t", 2)
	// Three beats after one seen once they were queued, the queued jobs
	// have waited 100 ms at least (the worker, busy with the first job,
	// beats only on its 100 ms ticker).
	first, _ := beatOf(d, "gpu")
	awaitBeat(t, d, "gpu", "three more beats", func(hb schema.Heartbeat) bool { return hb.Seq >= first.Seq+3 })
	g.release <- struct{}{} // the next job leaves one behind it
	g.awaitStarted(t, 1)
	id := d.ID()
	aged := awaitBeat(t, d, "gpu", "the queue's age", func(hb schema.Heartbeat) bool {
		_, holds := hb.Jobs[id]
		return holds && hb.Received[id] == 2 && hb.QueueAgeUs[id] >= (100*time.Millisecond).Microseconds()
	})
	g.release <- struct{}{} // the last job leaves none
	g.awaitStarted(t, 1)
	awaitBeat(t, d, "gpu", "an age from the last job, which left no queue", func(hb schema.Heartbeat) bool {
		return hb.Received[id] == 3 && hb.QueueAgeUs[id] < aged.QueueAgeUs[id]
	})
	g.release <- struct{}{}
	if got := byDeployment(t, <-done); got["gpu"] != 3 {
		t.Fatalf("jobs went %v, want 3 on gpu", got)
	}
}
