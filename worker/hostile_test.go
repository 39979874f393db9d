package worker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// Anyone may publish on <prefix>.w.<worker>. Jobs naming a thousand
// dispatchers, with ids too long for a beat and seqs that are not numbers,
// must not make the worker's beats ones that broker.DecodeHeartbeat (every
// dispatcher) refuses: that would cut the worker off the fleet.
func TestWorker_HostileJobHeaders_BeatsStayWithinBrokerBounds(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &echo{}
	w := e.worker(p, func(c *worker.Config) { c.Concurrency, c.Backlog = 8, broker.MaxCapacity })
	const n = 3 * broker.MaxBeatDispatchers
	nobody := e.nc.NewInbox() // a valid reply subject no one reads
	seqs := []string{"1", "18446744073709551615", "-1", "abc", "", "99999999999999999999999"}
	for i := range n {
		d := fmt.Sprintf("evil-%d", i)
		if i%7 == 0 {
			d = strings.Repeat("x", 2*broker.MaxWorkerIDLen) + d
		}
		m := job(t, w, ask("x"), schema.HeaderDispatcher, d, schema.HeaderJobSeq, seqs[i%len(seqs)],
			schema.HeaderDeadline, []string{"9223372036854775807", "-5", "soon"}[i%3])
		m.Reply = nobody
		if err := e.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	// A job sent after them all is answered after the worker took them.
	if resp := decodeResponse(t, e.request(job(t, w, ask("still here")))); resp.Text() != "echo: still here" {
		t.Fatalf("text %q", resp.Text())
	}
	hb := awaitHeartbeat(t, w, "every job done", func(hb schema.Heartbeat) bool { return hb.Completed == n+1 })
	data, err := schema.MsgPack.Marshal(&hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.subjects.DecodeHeartbeat(e.subjects.Heartbeat(w.ID()), data, time.Now()); err != nil {
		t.Fatalf("a dispatcher refuses the worker's beat after hostile jobs: %v (received names %d dispatchers)", err, len(hb.Received))
	}
	for d := range hb.Received {
		if len(d) > broker.MaxWorkerIDLen {
			t.Fatalf("beat names a dispatcher id of %d bytes", len(d))
		}
	}
}

// A job whose reply subject the worker must not publish on (one of llmq's
// own subjects, a system subject, a wildcard, one too long for a
// forwarded protocol line) is dropped: no provider call, no reply, no
// stream chunk, counted; the worker goes on serving.
func TestWorker_UnpublishableReplySubject_DroppedNeverAnswered(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &echo{}
	w := e.worker(p)
	seen := make(chan *nats.Msg, 64)
	for _, s := range []string{e.subjects.Name() + ".>", "$JS.>", "x.>"} {
		sub, err := e.nc.ChanSubscribe(s, seen)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	replies := []string{
		e.subjects.Retry(),
		e.subjects.Jobs(tier),
		e.subjects.Heartbeat("victim"),
		"$JS.API.STREAM.DELETE.x",
		"x.*",
		"x." + strings.Repeat("a", broker.MaxReplyLen),
	}
	for i, r := range replies {
		req := ask("x")
		req.Stream = i%2 == 0
		m := job(t, w, req)
		m.Reply = r
		if err := e.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if resp := decodeResponse(t, e.request(job(t, w, ask("still here")))); resp.Text() != "echo: still here" {
		t.Fatalf("text %q", resp.Text())
	}
	awaitHeartbeat(t, w, "every hostile job dropped", func(schema.Heartbeat) bool {
		return w.ServiceStats().Dropped == uint64(len(replies))
	})
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("provider called %d times, want once (the good job)", n)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-seen:
			if m.Subject == e.subjects.Worker(w.ID()) || m.Subject == e.subjects.Heartbeat(w.ID()) {
				continue // the test's own jobs and the worker's beats
			}
			t.Fatalf("worker published on %q (headers %v)", m.Subject, m.Header)
		default:
			return
		}
	}
}

func TestWorker_New_RefusesWhatAHeartbeatCannotCarry(t *testing.T) {
	t.Parallel()
	e := setup(t)
	nc := e.srv.Connect("worker")
	base := func(mod func(*worker.Config)) worker.Config {
		c := worker.Config{Conn: nc, Subjects: e.subjects, Tier: tier, Provider: &echo{}, Logger: quiet()}
		mod(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  worker.Config
		want string
	}{
		{"concurrency over broker.MaxCapacity", base(func(c *worker.Config) { c.Concurrency = broker.MaxCapacity + 1 }), "concurrency"},
		{"backlog over broker.MaxCapacity", base(func(c *worker.Config) { c.Backlog = broker.MaxCapacity + 1 }), "backlog"},
		{"id too long", base(func(c *worker.Config) { c.ID = strings.Repeat("a", broker.MaxWorkerIDLen+1) }), "id"},
		{"model too long", base(func(c *worker.Config) { c.Model = strings.Repeat("m", broker.MaxNameLen+1) }), "Model"},
		{"deployment too long", base(func(c *worker.Config) { c.Deployment = strings.Repeat("d", broker.MaxNameLen+1) }), "Deployment"},
		{"weight not a number", base(func(c *worker.Config) { c.Weight = -1 }), "weight"},
	}
	for _, c := range cases {
		if _, err := worker.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one naming %s", c.name, err, c.want)
		}
	}
	// A long deployment still gets a default id a beat can carry, and the
	// largest concurrency is accepted.
	w, err := worker.New(base(func(c *worker.Config) {
		c.Deployment = strings.Repeat("d", broker.MaxNameLen)
		c.Concurrency = broker.MaxCapacity
	}))
	if err != nil {
		t.Fatal(err)
	}
	hb := w.Heartbeat()
	data, err := schema.MsgPack.Marshal(&hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.subjects.DecodeHeartbeat(e.subjects.Heartbeat(w.ID()), data, time.Now()); err != nil {
		t.Fatalf("beat of a valid config refused: %v", err)
	}
}
