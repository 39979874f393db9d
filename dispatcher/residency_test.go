package dispatcher_test

import (
	"context"
	"testing"
	"time"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// gpuHost is a fake GPU host with a coder and a chat model and room for
// one of them; hold, when set, holds its calls.
func gpuHost(t *testing.T, hold <-chan struct{}) *ollamatest.Server {
	return ollamatest.NewServer(t, ollamatest.Config{Models: []string{"coder:14b", "chat:8b"}, MaxLoaded: 1,
		LoadTime: 150 * time.Millisecond, Parallel: 4, Hold: hold})
}

// ollamaWorker starts a worker of tier serving model on host.
func (e *env) ollamaWorker(tier, deployment string, capacity int, host *ollamatest.Server, model string, mod ...func(*worker.Config)) *worker.Worker {
	e.t.Helper()
	client := provider.NewHTTPClient()
	e.t.Cleanup(client.CloseIdleConnections)
	p, err := ollama.New(provider.Options{Model: model, APIBase: host.URL(), HTTP: client})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.worker(tier, deployment, capacity, p, append([]func(*worker.Config){func(c *worker.Config) {
		c.ProviderName, c.Model, c.Host, c.ResidencyInterval = "ollama", model, host.URL(), 20*time.Millisecond
	}}, mod...)...)
}

func warmUp(c *worker.Config) { c.WarmUp = true }

// answeredBy sends one job to tier and returns the deployment that
// answered, or "error: " and the error (it may run off the test's
// goroutine).
func (e *env) answeredBy(tier string) string {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := e.client.Complete(ctx, tier, ask("hi"))
	if err != nil {
		return "error: " + err.Error()
	}
	return resp.Routing.Deployment
}

func TestResidency_WarmHostTakesTheJobsOverAColdOne(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a, b := gpuHost(t, nil), gpuHost(t, nil)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"coder"}})
	e.ollamaWorker("coder", "coder-a", 4, a, "coder:14b", warmUp)
	e.ollamaWorker("coder", "coder-b", 4, b, "coder:14b")
	waitWorkers(t, d, "coder", 2)
	// One job at a time: a warm slot is always free, even when this
	// dispatcher's view of a's jobs is a beat behind (it waits
	// SpreadAfter for one before it may go cold).
	for range 20 {
		if got := e.answeredBy("coder"); got != "coder-a" {
			t.Fatalf("job answered by %s, want the warm coder-a", got)
		}
	}
	for _, r := range b.Requests() {
		if r.Path != "/api/ps" {
			t.Errorf("cold host b got %s %s; want only /api/ps", r.Method, r.Path)
		}
	}
}

func TestResidency_OffRoutesBlindly(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a, b := gpuHost(t, nil), gpuHost(t, nil)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"coder"}, NoResidency: true})
	e.ollamaWorker("coder", "coder-a", 4, a, "coder:14b", warmUp)
	e.ollamaWorker("coder", "coder-b", 4, b, "coder:14b")
	waitWorkers(t, d, "coder", 2)
	seen := map[string]int{}
	for range 20 {
		seen[e.answeredBy("coder")]++
	}
	if seen["coder-b"] == 0 || b.Stats().Loads != 1 {
		t.Errorf("answers %v, host b loads %d: the shuffle should have loaded the model on b", seen, b.Stats().Loads)
	}
}

func TestResidency_AllColdLoadsOnceOnOneHost(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a, b := gpuHost(t, nil), gpuHost(t, nil)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"coder"}})
	e.ollamaWorker("coder", "coder-a", 4, a, "coder:14b")
	e.ollamaWorker("coder", "coder-b", 4, b, "coder:14b")
	waitWorkers(t, d, "coder", 2)
	first := e.answeredBy("coder")
	for range 10 {
		if got := e.answeredBy("coder"); got != first {
			t.Fatalf("answered by %s after %s had loaded the model; fleet %+v", got, first, d.Stats().Tiers)
		}
	}
	if loads := a.Stats().Loads + b.Stats().Loads; loads != 1 {
		t.Errorf("%d loads, want 1", loads)
	}
}

func TestResidency_IdleColdHostTakesWhatTheWarmOneCannot(t *testing.T) {
	t.Parallel()
	e := setup(t)
	hold := make(chan struct{})
	a, b := gpuHost(t, hold), gpuHost(t, nil)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"coder"}})
	e.ollamaWorker("coder", "coder-a", 1, a, "coder:14b", warmUp)
	e.ollamaWorker("coder", "coder-b", 1, b, "coder:14b")
	waitWorkers(t, d, "coder", 2)
	held := make(chan string, 1)
	go func() { held <- e.answeredBy("coder") }()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 1 }); err != nil {
		t.Fatal(err)
	}
	if got := e.answeredBy("coder"); got != "coder-b" {
		t.Errorf("second job answered by %s, want the idle host b", got)
	}
	close(hold)
	if got := <-held; got != "coder-a" {
		t.Errorf("first job answered by %s", got)
	}
}

func TestResidency_JobWaitsForTheWarmHostRatherThanEvictABusyOne(t *testing.T) {
	t.Parallel()
	e := setup(t)
	holdA, holdB := make(chan struct{}), make(chan struct{})
	a, b := gpuHost(t, holdA), gpuHost(t, holdB)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"coder", "chat"}})
	e.ollamaWorker("coder", "coder-a", 1, a, "coder:14b", warmUp)
	e.ollamaWorker("chat", "chat-b", 4, b, "chat:8b", warmUp)
	e.ollamaWorker("coder", "coder-b", 4, b, "coder:14b")
	waitWorkers(t, d, "coder", 2)
	waitWorkers(t, d, "chat", 1)
	chat := make(chan string, 1)
	go func() { chat <- e.answeredBy("chat") }()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 1 }); err != nil {
		t.Fatal(err)
	}
	coder := make(chan string, 2)
	go func() { coder <- e.answeredBy("coder") }()
	if err := a.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 1 }); err != nil {
		t.Fatal(err)
	}
	go func() { coder <- e.answeredBy("coder") }()
	// The second coder job waits for a: b is busy with chat, and loading
	// coder there would evict it.
	select {
	case got := <-coder:
		t.Fatalf("a coder job was answered by %s while a was held", got)
	case <-time.After(300 * time.Millisecond): // a bound on a non-event: b would have answered by now
	}
	close(holdA)
	for range 2 {
		if got := <-coder; got != "coder-a" {
			t.Errorf("coder job answered by %s, want coder-a", got)
		}
	}
	close(holdB)
	<-chat
	if st := b.Stats(); st.Loads != 1 {
		t.Errorf("host b loaded %d models, want only chat", st.Loads)
	}
}
