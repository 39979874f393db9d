package dispatcher_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
)

func TestDispatcher_BatchJobs_LeaveASlotForInteractiveAndWaitBehindThem(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "least-busy"})
	g := newGate()
	e.worker("tier1", "only", 3, g)
	waitWorkers(t, d, "tier1", 1)
	inbox := e.nc.NewInbox()
	answers := make(chan *nats.Msg, 16)
	sub, err := e.nc.ChanSubscribe(inbox, answers)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for range 5 {
		m := &nats.Msg{Subject: e.subjects.Jobs("tier1"), Reply: inbox, Header: nats.Header{
			schema.HeaderContentType: {schema.ContentTypeJSON}, schema.HeaderPriority: {schema.PriorityBatch},
		}, Data: []byte(`{"messages":[{"role":"user","content":"batch"}]}`)}
		if err := e.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	g.awaitStarted(t, 2)
	deadline := time.Now().Add(wait)
	for batchQueued(d) != 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
	if q := batchQueued(d); q != 3 || g.running.Load() != 2 {
		t.Fatalf("batch: %d running, %d queued; want 2 running (one slot reserved) and 3 queued", g.running.Load(), q)
	}
	// An interactive job takes the reserved slot at once.
	done := make(chan error, 1)
	go func() {
		_, err := e.client.Complete(context.Background(), "tier1", ask("interactive"))
		done <- err
	}()
	g.awaitStarted(t, 1)
	g.mu.Lock()
	last := g.prompts[len(g.prompts)-1]
	g.mu.Unlock()
	if last != "interactive" {
		t.Fatalf("third call was %q, want the interactive job", last)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		select {
		case m := <-answers:
			if m.Header.Get(schema.HeaderStatus) != "" {
				t.Fatalf("batch job %d failed: %s", i, m.Data)
			}
		case <-time.After(wait):
			t.Fatalf("only %d of 5 batch jobs answered", i)
		}
	}
}

func batchQueued(d *dispatcher.Dispatcher) int {
	n := 0
	for _, ts := range d.Stats().Tiers {
		n += ts.BatchQueued
	}
	return n
}
