package batch_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/batch"
	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

// wait bounds every event a test waits for.
const wait = 30 * time.Second

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// connect dials urls, reconnecting forever and fast; closed at the end.
func connect(t *testing.T, urls, name string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, nats.Name(name), nats.Timeout(5*time.Second), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatalf("connect %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// fleet starts llmq components against one NATS server or cluster.
type fleet struct {
	t        *testing.T
	urls     string
	subjects broker.Subjects
}

func (f *fleet) dispatcher(name string) (*dispatcher.Dispatcher, *nats.Conn) {
	f.t.Helper()
	nc := connect(f.t, f.urls, name)
	d, err := dispatcher.New(dispatcher.Config{Conn: nc, Subjects: f.subjects, ID: name, Tiers: []string{"tier1"},
		Strategy: "least-busy", Logger: quiet()})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d, nc
}

func (f *fleet) worker(tier, deployment string, capacity int, p provider.Provider) *worker.Worker {
	f.t.Helper()
	w, err := worker.New(worker.Config{Conn: connect(f.t, f.urls, "worker-"+deployment), Subjects: f.subjects, Tier: tier,
		Deployment: deployment, Provider: p, ProviderName: "test", Model: "m", Concurrency: capacity,
		HeartbeatInterval: 200 * time.Millisecond, Logger: quiet()})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

func (f *fleet) runner(name string, mod func(*batch.RunnerConfig)) (*batch.Runner, *nats.Conn) {
	f.t.Helper()
	nc := connect(f.t, f.urls, name)
	cfg := batch.RunnerConfig{Conn: nc, Subjects: f.subjects, ID: name, AckWait: 2 * time.Second, JobTimeout: 5 * time.Second,
		Backoff: 50 * time.Millisecond, FetchWait: 200 * time.Millisecond, Logger: quiet()}
	if mod != nil {
		mod(&cfg)
	}
	r, err := batch.NewRunner(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
	return r, nc
}

func (f *fleet) client(replicas int) *batch.Client {
	f.t.Helper()
	return f.clientWaiting(replicas, 100*time.Millisecond)
}

// clientWaiting is a client whose Status listens runnerWait for the
// runners' reports: a test that needs every report (a cancelled batch is
// final only when no runner reports a job of it) waits longer than a
// loaded machine may take to answer.
func (f *fleet) clientWaiting(replicas int, runnerWait time.Duration) *batch.Client {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := batch.Open(ctx, batch.Config{Conn: connect(f.t, f.urls, "producer"), Subjects: f.subjects,
		Store: batch.StoreConfig{Replicas: replicas}, RunnerWait: runnerWait})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// jobs makes n jobs for tier, custom ids "job-0"…, prompts "p job-0"….
func jobs(n int, tier string) iter.Seq[batch.Job] {
	return func(yield func(batch.Job) bool) {
		for i := range n {
			id := fmt.Sprintf("job-%d", i)
			if !yield(batch.Job{CustomID: id, Tier: tier, Request: ask("p " + id)}) {
				return
			}
		}
	}
}

func ask(text string) *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}}
}

func submit(t *testing.T, c *batch.Client, id string, js iter.Seq[batch.Job]) *batch.SubmitReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	rep, err := c.Submit(ctx, id, js)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return rep
}

// awaitStatus polls the batch's status until ok says so; NATS errors (a
// server restarting) are retried.
func awaitStatus(t *testing.T, c *batch.Client, id string, within time.Duration, ok func(*batch.Status) bool) *batch.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	var last *batch.Status
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := c.Status(ctx, id)
		cancel()
		if err == nil {
			last = s
			if ok(s) {
				return s
			}
		} else {
			lastErr = err
		}
		time.Sleep(50 * time.Millisecond) // polling a snapshot: there is no event to wait on
	}
	t.Fatalf("batch %s: condition not met within %s; last status %+v, last error %v", id, within, last, lastErr)
	return nil
}

// results reads every stored result, counting them per custom_id.
func results(t *testing.T, c *batch.Client, id string) (map[string]int, []*batch.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	seen := map[string]int{}
	var all []*batch.Result
	for r, err := range c.Results(ctx, id, batch.ResultsOptions{}) {
		if err != nil {
			t.Fatalf("results: %v", err)
		}
		seen[r.CustomID]++
		all = append(all, r)
	}
	return seen, all
}

// exactlyOnce fails unless every one of the n jobs has one result, and
// that a completion answering its own prompt.
func exactlyOnce(t *testing.T, c *batch.Client, id string, n int) {
	t.Helper()
	seen, all := results(t, c, id)
	var missing, twice []string
	for i := range n {
		cid := fmt.Sprintf("job-%d", i)
		switch seen[cid] {
		case 0:
			missing = append(missing, cid)
		case 1:
		default:
			twice = append(twice, cid)
		}
	}
	if len(missing) > 0 || len(twice) > 0 || len(all) != n {
		t.Fatalf("%d results for %d jobs; missing %d %v; more than once %d %v", len(all), n, len(missing), head(missing), len(twice), head(twice))
	}
	for _, r := range all {
		resp, err := r.Completion()
		if err != nil {
			t.Fatalf("job %s failed: %v", r.CustomID, err)
		}
		if !strings.Contains(resp.Text(), "p "+r.CustomID) {
			t.Fatalf("job %s answered %q, not its own prompt", r.CustomID, resp.Text())
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// counter is an instant provider that counts calls per prompt.
type counter struct {
	mu    sync.Mutex
	calls map[string]int
	total atomic.Int64
}

func newCounter() *counter { return &counter{calls: map[string]int{}} }

func (c *counter) Complete(_ context.Context, req *schema.Request) (*schema.Response, error) {
	text := string(req.Messages[len(req.Messages)-1].Content)
	c.mu.Lock()
	c.calls[text]++
	c.mu.Unlock()
	c.total.Add(1)
	return reply(text), nil
}

func reply(text string) *schema.Response {
	return &schema.Response{
		Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: schema.Content("echo: " + text)}, FinishReason: schema.FinishStop}},
		Usage:   schema.Usage{PromptTokens: 1, CompletionTokens: 2},
	}
}

// gate is a provider whose calls block until released, recording the
// order in which prompts started.
type gate struct {
	release chan struct{}
	started chan string
	mu      sync.Mutex
	order   []string
}

func newGate() *gate { return &gate{release: make(chan struct{}), started: make(chan string, 10000)} }

func (g *gate) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	text := string(req.Messages[len(req.Messages)-1].Content)
	g.mu.Lock()
	g.order = append(g.order, text)
	g.mu.Unlock()
	g.started <- text
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return reply(text), nil
}

func (g *gate) await(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for range n {
		select {
		case p := <-g.started:
			got = append(got, p)
		case <-time.After(wait):
			t.Fatalf("only %d of %d calls started: %v", len(got), n, got)
		}
	}
	return got
}
