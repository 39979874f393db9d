package dispatcher_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

func TestDispatcher_Take_HandlesJobAsIfFromNATS(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "w1", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	inbox := e.nc.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	job := func(subject string, h nats.Header) *nats.Msg {
		h[schema.HeaderContentType] = []string{schema.ContentTypeJSON}
		return &nats.Msg{Subject: subject, Reply: inbox, Header: h, Data: jobBody}
	}

	if d.Take(job("other.jobs.tier1", nats.Header{})) {
		t.Fatal("took a job on a subject that is none of its job subjects")
	}
	// Checked as any job: headers only llmq components set are removed
	// (a forged attempt count would otherwise be kept) and counted.
	if !d.Take(job(e.subjects.Jobs("tier1"), nats.Header{schema.HeaderAttempt: {"9"}})) {
		t.Fatal("a running dispatcher did not take a job")
	}
	reply, err := replies.NextMsg(wait)
	if err != nil {
		t.Fatal(err)
	}
	if broker.IsError(reply) {
		t.Fatalf("error reply: %s", reply.Header.Get(schema.HeaderErrorMessage))
	}
	resp, err := schema.DecodeReply(schema.JSON, reply.Data, false)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Routing.Tier != "tier1" || resp.Routing.Attempts != 1 {
		t.Fatalf("routing %+v, want tier1 after 1 attempt", resp.Routing)
	}
	if s := d.Stats(); s.Received != 1 || s.Dropped.InternalHeaders != 1 {
		t.Fatalf("received %d, internal headers on %d jobs; want 1 and 1", s.Received, s.Dropped.InternalHeaders)
	}

	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.Take(job(e.subjects.Jobs("tier1"), nats.Header{})) {
		t.Fatal("a stopped dispatcher took a job")
	}
}

func TestDispatcher_Take_BeforeStartRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d, err := dispatcher.New(dispatcher.Config{Conn: e.nc, Subjects: e.subjects, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if d.Take(&nats.Msg{Subject: e.subjects.Jobs("tier1"), Reply: e.nc.NewInbox(), Data: jobBody}) {
		t.Fatal("a dispatcher not started took a job")
	}
	if d.Conn() != e.nc {
		t.Fatal("Conn is not the configured connection")
	}
}

func TestDispatcher_AddLocal_HandsJobsToLocalWorkersInProcess(t *testing.T) {
	t.Parallel()
	e := setup(t)
	shared := e.srv.Connect("shared")
	d, err := dispatcher.New(dispatcher.Config{Conn: shared, Subjects: e.subjects, Logger: quiet(), Tiers: []string{"near", "far"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	near := e.worker("near", "n1", 2, echo(), func(c *worker.Config) { c.Conn = shared })
	far := e.worker("far", "f1", 2, echo())
	if err := d.AddLocal(far); err == nil {
		t.Fatal("AddLocal took a worker on another connection")
	}
	if err := d.AddLocal(near); err != nil {
		t.Fatal(err)
	}
	waitWorkers(t, d, "near", 1)
	waitWorkers(t, d, "far", 1)
	spy := e.srv.Connect("spy")
	sub, err := spy.SubscribeSync(e.subjects.Prefix + ".w.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, tier := range []string{"near", "near", "near", "far", "far"} {
		resp, err := e.client.Complete(ctx, tier, ask("hi"))
		if err != nil {
			t.Fatalf("%s: %v", tier, err)
		}
		if resp.Routing.Tier != tier {
			t.Fatalf("routing %+v, want tier %s", resp.Routing, tier)
		}
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	// The server queues a forwarded job for the spy as it routes it,
	// before the worker can answer it, and the flush's PONG comes after.
	if n, _, _ := sub.Pending(); n != 2 {
		t.Fatalf("%d jobs published on worker subjects, want 2 (the far worker's)", n)
	}
	if s := d.Stats(); s.Dispatched != 5 {
		t.Fatalf("dispatched %d jobs, want 5", s.Dispatched)
	}
}
