package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

func TestWorker_Cancel_RunningJobCallCancelledAndNothingSent(t *testing.T) {
	t.Parallel()
	e := setup(t)
	started, ended := make(chan struct{}), make(chan error, 1)
	w := e.worker(provider.Func(func(ctx context.Context, _ *schema.Request) (*schema.Response, error) {
		close(started)
		select {
		case <-ctx.Done():
			ended <- ctx.Err()
			return nil, provider.TransportError(ctx, ctx.Err())
		case <-time.After(wait):
			ended <- errors.New("never cancelled")
			return text("late", 1, 1), nil
		}
	}))
	inbox := e.nc.NewInbox()
	got := make(chan *nats.Msg, 4)
	sub, err := e.nc.ChanSubscribe(inbox, got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	m := job(t, w, ask("x"), schema.HeaderControl, "true")
	m.Reply = inbox
	if err := e.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := e.nc.Publish(e.subjects.Cancel(inbox), nil); err != nil {
		t.Fatal(err)
	}
	if err := awaitEnd(t, ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("provider call ended with %v, want its ctx cancelled", err)
	}
	s := awaitStats(t, w, "the job counted failed", func(s worker.ServiceStats) bool { return s.Failed == 1 && s.InFlight == 0 })
	if s.Completed != 0 || s.EarlyCancels != 0 {
		t.Fatalf("stats %+v", s)
	}
	// Nothing was sent to the producer: a message after the cancel would
	// be ahead of this one on the same connection's subscription.
	if err := e.nc.Publish(inbox, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; string(m.Data) != "marker" {
		t.Fatalf("the producer got %q after cancelling", m.Data)
	}
}

func TestWorker_Cancel_BeforeTheJobCame_JobDroppedUnrun(t *testing.T) {
	t.Parallel()
	e := setup(t)
	calls := make(chan string, 2)
	w := e.worker(provider.Func(func(ctx context.Context, req *schema.Request) (*schema.Response, error) {
		calls <- req.Messages[0].Text()
		return text("ok", 1, 1), nil
	}))
	inbox := e.nc.NewInbox()
	if err := e.nc.Publish(e.subjects.Cancel(inbox), nil); err != nil {
		t.Fatal(err)
	}
	awaitStats(t, w, "the cancel kept", func(s worker.ServiceStats) bool { return s.EarlyCancels == 1 })
	m := job(t, w, ask("cancelled"), schema.HeaderControl, "true")
	m.Reply = inbox
	if err := e.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	awaitStats(t, w, "the job counted failed", func(s worker.ServiceStats) bool { return s.Failed == 1 && s.EarlyCancels == 0 })
	// The next job on another inbox runs: the cancel was for one job only.
	if r := e.request(job(t, w, ask("next"), schema.HeaderControl, "true")); decodeResponse(t, r).Text() != "ok" {
		t.Fatalf("next job: %s", r.Data)
	}
	if c := <-calls; c != "next" {
		t.Fatalf("provider called with %q", c)
	}
}

// Anybody allowed to publish cancels can send garbage or a flood: subjects
// naming no valid reply are counted and dropped, and the cancels kept for
// jobs to come are bounded.
func TestWorker_Cancel_HostileCancelsBoundedAndWorkerServes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(provider.Func(func(ctx context.Context, req *schema.Request) (*schema.Response, error) {
		return text("ok", 1, 1), nil
	}))
	bad := []string{
		e.subjects.Cancel("$SYS.REQ.SERVER.PING"),
		e.subjects.Cancel(e.subjects.Worker("other")),
		e.subjects.Cancel("_INBOX." + strings.Repeat("x", broker.MaxReplyLen)),
	}
	for _, s := range bad {
		if err := e.nc.Publish(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	const flood = 5000
	for i := range flood {
		if err := e.nc.Publish(e.subjects.Cancel(fmt.Sprintf("_INBOX.flood.%d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	s := awaitStats(t, w, "the flood handled", func(s worker.ServiceStats) bool {
		return s.DroppedCancels == uint64(len(bad)) && s.EarlyCancels == 4096
	})
	if s.Failed != 0 {
		t.Fatalf("stats %+v", s)
	}
	if r := e.request(job(t, w, ask("x"), schema.HeaderControl, "true")); decodeResponse(t, r).Text() != "ok" {
		t.Fatalf("job after the flood: %s", r.Data)
	}
}
