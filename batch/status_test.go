package batch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/batch"
	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
)

// A cancelled batch is reported final (cancelled, nothing running) only
// once the results of every job that started are counted. TestBatch_Cancel
// once saw "cancelled, Done 3" after 4 provider calls: Status counted the
// results, then asked the runners, and the last job stored its result and
// ended in between. Here the last job is released exactly when Status
// counts the results, in several rounds.
func TestBatch_Status_CancelledIsFinalOnlyWithEveryStartedJobsResult(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	f.dispatcher("d1")
	g := newGate()
	f.worker("tier1", "a", 2, g)
	f.runner("r1", func(c *batch.RunnerConfig) { c.Concurrency = 1 })
	c := f.clientWaiting(0, time.Second)
	spy := connect(t, srv.ClientURL(), "spy")
	var mu sync.Mutex
	var armed string // the batch whose results count releases the job
	release := make(chan struct{}, 1)
	stream := broker.Token(f.subjects.Prefix) + "_batch_results"
	if _, err := spy.Subscribe("$JS.API.CONSUMER.CREATE."+stream+".>", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if armed != "" && strings.Contains(m.Subject, ".batch.results."+armed+".") {
			armed = ""
			release <- struct{}{}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range release {
			g.release <- struct{}{} // one job goes on
		}
	}()
	t.Cleanup(func() { close(release) })
	for round := range 5 {
		id := fmt.Sprint("s", round)
		submit(t, c, id, jobs(3, "tier1"))
		g.await(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		if err := c.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		armed = id
		mu.Unlock()
		s := awaitStatus(t, c, id, wait, func(s *batch.Status) bool { return s.State == batch.StateCancelled })
		cancel()
		if s.Done != 1 {
			t.Fatalf("round %d: %+v: final with %d results, want the 1 job that started", round, s, s.Done)
		}
	}
}
