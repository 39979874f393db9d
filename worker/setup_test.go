package worker_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

// wait is the generous bound on any event a test waits for.
const wait = 20 * time.Second

// The tier, deployment and names every test worker reports.
const (
	tier       = "tier1"
	deployment = "dep1"
	provName   = "test"
	modelName  = "m1"
)

type env struct {
	t        *testing.T
	srv      *brokertest.Server
	subjects broker.Subjects
	// nc is the test's own connection: it acts as producer and, when a
	// test drives a worker directly, as the dispatcher.
	nc *nats.Conn

	mu       sync.Mutex
	releases []func() // run before workers stop, so no call blocks a drain
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := brokertest.NewServer(t, brokertest.Options{})
	e := &env{t: t, srv: srv, subjects: brokertest.Subjects(t)}
	e.nc = srv.Connect("producer")
	return e
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newWorker builds a worker of tier on its own connection without
// starting it. Beats come only on events (start, announce, a freed slot,
// Stop) unless a test sets HeartbeatInterval.
func (e *env) newWorker(p provider.Provider, mod ...func(*worker.Config)) *worker.Worker {
	e.t.Helper()
	cfg := worker.Config{
		Conn: e.srv.Connect("worker"), Subjects: e.subjects, Tier: tier, Deployment: deployment,
		Provider: p, ProviderName: provName, Model: modelName, Concurrency: 2,
		HeartbeatInterval: time.Hour, Logger: quiet(),
	}
	for _, m := range mod {
		m(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

// worker builds and starts a worker, stopped when the test ends.
func (e *env) worker(p provider.Provider, mod ...func(*worker.Config)) *worker.Worker {
	e.t.Helper()
	w := e.newWorker(p, mod...)
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		e.mu.Lock()
		rs := e.releases
		e.mu.Unlock()
		for _, r := range rs {
			r()
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = w.Stop(ctx)
	})
	return w
}

// dispatcher starts a dispatcher serving tier on its own connection.
func (e *env) dispatcher() *dispatcher.Dispatcher {
	e.t.Helper()
	d, err := dispatcher.New(dispatcher.Config{Conn: e.srv.Connect("dispatcher"), Subjects: e.subjects, Tiers: []string{tier}, Logger: quiet()})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

// client returns a producer on the test's connection.
func (e *env) client() *client.Client {
	return client.New(e.nc, client.Config{Subjects: e.subjects, Timeout: wait})
}

func waitWorkers(t *testing.T, d *dispatcher.Dispatcher, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.WaitWorkers(ctx, tier, n); err != nil {
		t.Fatal(err)
	}
}

func ask(text string) *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}}
}

// job is a msgpack job for w as a dispatcher forwards it. hdr are pairs of
// header key and value.
func job(t *testing.T, w *worker.Worker, req *schema.Request, hdr ...string) *nats.Msg {
	t.Helper()
	data, err := schema.MsgPack.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: w.Subject(), Data: data, Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeMsgPack}}}
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	return m
}

// deadlineIn is a Llmq-Deadline header value d from now.
func deadlineIn(d time.Duration) string {
	return strconv.FormatInt(time.Now().Add(d).UnixMilli(), 10)
}

// request sends m and waits for the worker's reply.
func (e *env) request(m *nats.Msg) *nats.Msg {
	e.t.Helper()
	reply, err := e.nc.RequestMsg(m, wait)
	if err != nil {
		e.t.Fatalf("no reply: %v", err)
	}
	return reply
}

// reply is the outcome of a request sent from another goroutine.
type reply struct {
	msg *nats.Msg
	err error
}

// requestAsync sends m from a goroutine; the reply arrives on the channel.
func (e *env) requestAsync(m *nats.Msg) <-chan reply {
	ch := make(chan reply, 1)
	go func() {
		msg, err := e.nc.RequestMsg(m, wait)
		ch <- reply{msg, err}
	}()
	return ch
}

func awaitReply(t *testing.T, ch <-chan reply) *nats.Msg {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("no reply: %v", r.err)
		}
		return r.msg
	case <-time.After(wait + time.Second):
		t.Fatal("no reply")
	}
	return nil
}

// decodeResponse decodes a successful reply, failing on an error reply.
func decodeResponse(t *testing.T, m *nats.Msg) *schema.Response {
	t.Helper()
	resp, err := schema.DecodeReply(broker.CodecOf(m), m.Data, broker.IsError(m))
	if err != nil {
		t.Fatalf("reply is an error: %v", err)
	}
	return resp
}

// decodeError decodes an error reply and checks its headers agree with its
// body.
func decodeError(t *testing.T, m *nats.Msg) *schema.Error {
	t.Helper()
	if !broker.IsError(m) {
		t.Fatalf("reply is not an error: headers %v, body %q", m.Header, m.Data)
	}
	e := schema.DecodeError(broker.CodecOf(m), m.Data)
	if got := m.Header.Get(schema.HeaderErrorCode); got != e.Code {
		t.Errorf("header %s = %q, body code %q", schema.HeaderErrorCode, got, e.Code)
	}
	if got := m.Header.Get(schema.HeaderStatus); got != strconv.Itoa(e.Status) {
		t.Errorf("header %s = %q, body status %d", schema.HeaderStatus, got, e.Status)
	}
	return e
}

// text returns a response of text with the given token counts (total left
// for the worker to fill).
func text(s string, prompt, completion int) *schema.Response {
	return &schema.Response{
		Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: schema.Content(s)}, FinishReason: schema.FinishStop}},
		Usage:   schema.Usage{PromptTokens: prompt, CompletionTokens: completion},
	}
}

// echo answers at once with the last message, counting its calls.
type echo struct{ calls atomic.Int64 }

func (p *echo) Complete(_ context.Context, req *schema.Request) (*schema.Response, error) {
	p.calls.Add(1)
	return text("echo: "+string(req.Messages[len(req.Messages)-1].Content), 1, 2), nil
}

// gate is a provider whose calls block until released or until their ctx
// ends, recording how many run at once and how each ended.
type gate struct {
	release chan struct{}
	once    sync.Once
	started chan struct{}
	ended   chan error // ctx.Err() of each call that its ctx ended
	running atomic.Int64
	maxSeen atomic.Int64
	calls   atomic.Int64
}

// gate returns a gate released, at the latest, before the test's workers
// stop.
func (e *env) gate() *gate {
	g := &gate{release: make(chan struct{}), started: make(chan struct{}, 1024), ended: make(chan error, 1024)}
	e.mu.Lock()
	e.releases = append(e.releases, g.open)
	e.mu.Unlock()
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func (g *gate) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	g.calls.Add(1)
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for {
		m := g.maxSeen.Load()
		if n <= m || g.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	g.started <- struct{}{}
	select {
	case <-g.release:
		return text("done: "+string(req.Messages[0].Content), 1, 1), nil
	case <-ctx.Done():
		g.ended <- ctx.Err()
		return nil, provider.TransportError(ctx, ctx.Err())
	}
}

// awaitStarted waits until n more calls have started.
func (g *gate) awaitStarted(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(wait)
	for i := range n {
		select {
		case <-g.started:
		case <-deadline:
			t.Fatalf("only %d of %d calls started", i, n)
		}
	}
}

// awaitEnded waits for the next call that its ctx ended and returns the
// ctx's error.
func (g *gate) awaitEnded(t *testing.T) error {
	t.Helper()
	select {
	case err := <-g.ended:
		return err
	case <-time.After(wait):
		t.Fatal("the provider's ctx was never cancelled")
	}
	return nil
}

// streamFunc is a provider.Streamer written as a function; Complete runs
// it with an emit that discards.
type streamFunc func(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error)

func (f streamFunc) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	return f(ctx, req, func(schema.ChunkChoice) error { return nil })
}

func (f streamFunc) Stream(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
	return f(ctx, req, emit)
}

// awaitHeartbeat polls the worker's own state until ok holds; beats have
// no other signal a test can wait on without a subscription.
func awaitHeartbeat(t *testing.T, w *worker.Worker, what string, ok func(schema.Heartbeat) bool) schema.Heartbeat {
	t.Helper()
	return awaitSnapshot(t, w.Heartbeat, what, ok)
}

// awaitStats polls the worker's stats until ok holds.
func awaitStats(t *testing.T, w *worker.Worker, what string, ok func(worker.ServiceStats) bool) worker.ServiceStats {
	t.Helper()
	return awaitSnapshot(t, w.ServiceStats, what, ok)
}

// awaitSnapshot polls get until ok holds.
func awaitSnapshot[T any](t *testing.T, get func() T, what string, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		v := get()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker never reached %s: last %+v", what, v)
		}
		time.Sleep(2 * time.Millisecond) // polling a snapshot
	}
}

// beats subscribes to every heartbeat of the test's subjects.
func (e *env) beats() <-chan *nats.Msg {
	e.t.Helper()
	ch := make(chan *nats.Msg, 4096)
	sub, err := e.nc.ChanSubscribe(e.subjects.HeartbeatWildcard(), ch)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return ch
}

// nextBeat returns the next heartbeat published.
func nextBeat(t *testing.T, ch <-chan *nats.Msg) schema.Heartbeat {
	t.Helper()
	select {
	case m := <-ch:
		var hb schema.Heartbeat
		if err := msgpack.Unmarshal(m.Data, &hb); err != nil {
			t.Fatalf("heartbeat is not msgpack: %v", err)
		}
		return hb
	case <-time.After(wait):
		t.Fatal("no heartbeat")
	}
	return schema.Heartbeat{}
}

// awaitBeat returns the first heartbeat for which ok holds, checking that
// seq increases along the way.
func awaitBeat(t *testing.T, ch <-chan *nats.Msg, what string, ok func(schema.Heartbeat) bool) schema.Heartbeat {
	t.Helper()
	deadline := time.Now().Add(wait)
	var last uint64
	for time.Now().Before(deadline) {
		hb := nextBeat(t, ch)
		if hb.Seq <= last {
			t.Fatalf("heartbeat seq %d after %d: must increase", hb.Seq, last)
		}
		last = hb.Seq
		if ok(hb) {
			return hb
		}
	}
	t.Fatalf("no heartbeat with %s", what)
	return schema.Heartbeat{}
}
