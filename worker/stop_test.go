package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

func TestWorker_Stop_FinishesInFlightJobsThenReturns(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	g := e.gate()
	w := e.worker(g, func(c *worker.Config) { c.Concurrency = 2 })
	a := e.requestAsync(job(t, w, ask("a")))
	b := e.requestAsync(job(t, w, ask("b")))
	g.awaitStarted(t, 2)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop(context.Background()) }()
	awaitBeat(t, beats, "state draining", func(hb schema.Heartbeat) bool { return hb.State == schema.StateDraining })
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with two calls still running", err)
	default:
	}
	// A job a dispatcher sent before it saw "draining" is still served.
	c := e.requestAsync(job(t, w, ask("c")))
	awaitHeartbeat(t, w, "the late job held", func(hb schema.Heartbeat) bool { return hb.InFlight == 3 })
	g.open()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Stop did not return after the jobs finished")
	}
	for name, ch := range map[string]<-chan reply{"a": a, "b": b, "c": c} {
		if resp := decodeResponse(t, awaitReply(t, ch)); resp.Text() != "done: "+name {
			t.Errorf("job %s: text %q", name, resp.Text())
		}
	}
	if hb := awaitBeat(t, beats, "state stopped", func(hb schema.Heartbeat) bool { return hb.State != schema.StateDraining }); hb.State != schema.StateStopped || hb.Completed != 3 {
		t.Fatalf("beat after draining %+v, want stopped with 3 completed", hb)
	}
	// A stopped worker takes no more jobs.
	if _, err := e.nc.RequestMsg(job(t, w, ask("late")), wait); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("job after Stop: %v, want no responders", err)
	}
}

func TestWorker_Stop_CtxEndsFirst_CancelsCallsAndEachProducerGetsTypedError(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	g := e.gate()
	w := e.worker(g, func(c *worker.Config) { c.Concurrency = 2; c.Backlog = 1 })
	var replies []<-chan reply
	for range 3 {
		replies = append(replies, e.requestAsync(job(t, w, ask("x"), schema.HeaderDeadline, deadlineIn(wait))))
	}
	g.awaitStarted(t, 2)
	awaitHeartbeat(t, w, "three jobs held", func(hb schema.Heartbeat) bool { return hb.InFlight == 3 })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop(ctx) }()
	awaitBeat(t, beats, "state draining", func(hb schema.Heartbeat) bool { return hb.State == schema.StateDraining })
	cancel()
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Stop: %v, want the ctx's error", err)
		}
	case <-time.After(wait):
		t.Fatal("Stop did not return after its ctx ended")
	}
	for i := range 2 {
		if err := g.awaitEnded(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("call %d: ctx ended with %v, want cancelled", i, err)
		}
	}
	for i, ch := range replies {
		se := decodeError(t, awaitReply(t, ch))
		if se.Code != schema.CodeCancelled {
			t.Errorf("job %d: error %+v, want cancelled", i, se)
		}
	}
	if hb := awaitBeat(t, beats, "state stopped", func(hb schema.Heartbeat) bool { return hb.State == schema.StateStopped }); hb.Failed != 3 || hb.InFlight != 0 {
		t.Fatalf("stopped beat %+v, want 3 failed and none in flight", hb)
	}
}
