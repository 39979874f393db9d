package dispatcher_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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

type env struct {
	t        *testing.T
	srv      *brokertest.Server
	subjects broker.Subjects
	client   *client.Client
	nc       *nats.Conn
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := brokertest.NewServer(t, brokertest.Options{})
	e := &env{t: t, srv: srv, subjects: brokertest.Subjects(t)}
	e.nc = srv.Connect("producer")
	e.client = client.New(e.nc, client.Config{Subjects: e.subjects, Timeout: wait})
	return e
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// dispatcher starts a dispatcher on its own connection.
func (e *env) dispatcher(cfg dispatcher.Config) *dispatcher.Dispatcher {
	e.t.Helper()
	cfg.Conn = e.srv.Connect("dispatcher")
	cfg.Subjects = e.subjects
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	d, err := dispatcher.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

// worker starts a worker of tier on its own connection.
func (e *env) worker(tier, deployment string, capacity int, p provider.Provider, mod ...func(*worker.Config)) *worker.Worker {
	e.t.Helper()
	cfg := worker.Config{
		Conn: e.srv.Connect("worker-" + deployment), Subjects: e.subjects, Tier: tier, Deployment: deployment,
		Provider: p, ProviderName: "test", Model: "m-" + deployment, Concurrency: capacity,
		HeartbeatInterval: 100 * time.Millisecond, Logger: quiet(),
	}
	for _, m := range mod {
		m(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

func waitWorkers(t *testing.T, d *dispatcher.Dispatcher, tier string, n int) {
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

// echo answers at once with the prompt.
func echo() provider.Func {
	return func(_ context.Context, req *schema.Request) (*schema.Response, error) {
		text := string(req.Messages[len(req.Messages)-1].Content)
		return &schema.Response{
			Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: schema.Content("echo: " + text)}, FinishReason: schema.FinishStop}},
			Usage:   schema.Usage{PromptTokens: 1, CompletionTokens: 2},
		}, nil
	}
}

// gate is a provider whose calls block until released, recording how many
// run at once.
type gate struct {
	release chan struct{}
	started chan struct{}
	running atomic.Int64
	maxSeen atomic.Int64
	mu      sync.Mutex
	prompts []string
}

func newGate() *gate {
	return &gate{release: make(chan struct{}), started: make(chan struct{}, 1024)}
}

func (g *gate) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for {
		m := g.maxSeen.Load()
		if n <= m || g.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	g.mu.Lock()
	g.prompts = append(g.prompts, string(req.Messages[0].Content))
	g.mu.Unlock()
	g.started <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, provider.TransportError(ctx, ctx.Err())
	}
	return echo()(ctx, req)
}

// awaitStarted waits until n calls have started.
func (g *gate) awaitStarted(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(wait)
	for range n {
		select {
		case <-g.started:
		case <-deadline:
			t.Fatalf("only some of %d calls started", n)
		}
	}
}

// result is one job's outcome.
type result struct {
	resp *schema.Response
	err  error
}

// sendAll sends n jobs concurrently and returns their outcomes.
func (e *env) sendAll(tier string, n int, prompt string) []result {
	out := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			out[i].resp, out[i].err = e.client.Complete(ctx, tier, ask(prompt))
		}()
	}
	wg.Wait()
	return out
}

// byDeployment counts successful replies per deployment, failing the test
// on any error.
func byDeployment(t *testing.T, rs []result) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range rs {
		if r.err != nil {
			t.Fatalf("job failed: %v", r.err)
		}
		if !strings.HasPrefix(r.resp.Text(), "echo: ") {
			t.Fatalf("unexpected reply %q", r.resp.Text())
		}
		out[r.resp.Routing.Deployment]++
	}
	return out
}
