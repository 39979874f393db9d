package worker_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// gpuHost is a fake GPU host with two models; room is how many fit.
func gpuHost(t *testing.T, room int, hold <-chan struct{}) *ollamatest.Server {
	return ollamatest.NewServer(t, ollamatest.Config{Models: []string{"coder:14b", "chat:8b"}, MaxLoaded: room,
		LoadTime: 150 * time.Millisecond, Parallel: 4, Hold: hold})
}

func ollamaOn(t *testing.T, base, model string, opts ...ollama.Option) *ollama.Provider {
	t.Helper()
	client := provider.NewHTTPClient()
	t.Cleanup(client.CloseIdleConnections)
	p, err := ollama.New(provider.Options{Model: model, APIBase: base, HTTP: client}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHostBudget_TwoTiersOnOneHostNeverRunMoreThanItsSlots(t *testing.T) {
	t.Parallel()
	e := setup(t)
	hold := make(chan struct{})
	host := gpuHost(t, 2, hold)
	budget, err := worker.NewHostBudget(3)
	if err != nil {
		t.Fatal(err)
	}
	var ws []*worker.Worker
	for _, m := range []string{"coder:14b", "chat:8b"} {
		ws = append(ws, e.worker(ollamaOn(t, host.URL(), m), func(c *worker.Config) {
			c.Tier, c.Deployment, c.Model, c.Concurrency, c.HostBudget = "t-"+m[:4], "d-"+m[:4], m, 4, budget
		}))
	}
	var replies []<-chan reply
	for i := range 8 {
		replies = append(replies, e.requestAsync(job(t, ws[i%2], ask("hi"))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := host.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 3 }); err != nil {
		t.Fatal(err)
	}
	// Both workers see the host full: no free slot for a dispatcher.
	for _, w := range ws {
		awaitHeartbeat(t, w, "host full", func(hb schema.Heartbeat) bool {
			return hb.HostSlots == 3 && hb.HostInFlight == 3 && hb.InFlight == hb.Capacity
		})
	}
	close(hold)
	for _, ch := range replies {
		if m := awaitReply(t, ch); m.Header.Get(schema.HeaderStatus) != "" {
			t.Fatalf("job failed: %s", m.Data)
		}
	}
	if got := host.MaxInFlight(); got != 3 {
		t.Errorf("the host ran %d calls at once, want the budget's 3", got)
	}
	// Idle, each worker has the host's 3 slots free of its own 4: it
	// counts the fourth as taken.
	for _, w := range ws {
		awaitHeartbeat(t, w, "host idle", func(hb schema.Heartbeat) bool { return hb.HostInFlight == 0 && hb.InFlight == 1 })
	}
}

func TestNewHostBudget_RefusesSlotsOutOfBounds(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1, 1 << 20} {
		if _, err := worker.NewHostBudget(n); err == nil {
			t.Errorf("NewHostBudget(%d) = nil error", n)
		}
	}
}

func TestResidency_BeatsSayColdWarmAndTheLoadTime(t *testing.T) {
	t.Parallel()
	e := setup(t)
	host := gpuHost(t, 1, nil)
	w := e.worker(ollamaOn(t, host.URL(), "coder:14b"), func(c *worker.Config) {
		c.Model, c.ResidencyInterval = "coder:14b", 20*time.Millisecond
	})
	awaitHeartbeat(t, w, "cold on an empty host", func(hb schema.Heartbeat) bool { return hb.Cold && len(hb.Loaded) == 0 })
	if m := e.request(job(t, w, ask("hi"))); m.Header.Get(schema.HeaderStatus) != "" {
		t.Fatalf("job failed: %s", m.Data)
	}
	awaitHeartbeat(t, w, "warm with the load time learned", func(hb schema.Heartbeat) bool {
		return !hb.Cold && slices.Equal(hb.Loaded, []string{"coder:14b"}) && hb.LoadMs >= 150
	})
	// Another client loads the other model: the host evicts coder, and
	// the worker's beats say so.
	if err := ollamaOn(t, host.URL(), "chat:8b").Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	awaitHeartbeat(t, w, "cold after the eviction", func(hb schema.Heartbeat) bool {
		return hb.Cold && slices.Equal(hb.Loaded, []string{"chat:8b"})
	})
}

func TestWarmUp_WorkerLoadsItsModelBeforeItsFirstBeat(t *testing.T) {
	t.Parallel()
	e := setup(t)
	host := gpuHost(t, 1, nil)
	beats := e.beats()
	w := e.worker(ollamaOn(t, host.URL(), "chat:8b", ollama.WithKeepAlive("30m")), func(c *worker.Config) {
		c.Model, c.WarmUp = "chat:8b", true
	})
	if got := host.Loaded(); !slices.Equal(got, []string{"chat:8b"}) {
		t.Fatalf("loaded after Start = %v, want chat:8b", got)
	}
	if hb := nextBeat(t, beats); hb.Worker != w.ID() || hb.Cold || hb.LoadMs < 150 {
		t.Errorf("first beat %+v, want warm with the load time", hb)
	}
}

func TestResidency_ProviderThatCannotTellSendsNone(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(&echo{})
	hb := w.Heartbeat()
	if hb.Cold || hb.Loaded != nil || hb.LoadMs != 0 || hb.HostSlots != 0 {
		t.Errorf("beat %+v carries residency", hb)
	}
}

func TestFromDeployment_KeepAliveGoesWithEveryOllamaCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, wire string }{{`"10m"`, `"10m"`}, {"-1", "-1"}, {"0", "0"}} {
		fake := ollamatest.NewServer(t, ollamatest.Config{})
		cfg := fromDeployment(t, "model: ollama/"+ollamatest.DefaultModel+"\napi_base: "+fake.URL()+"\nkeep_alive: "+tc.yaml, "")
		if _, err := cfg.Provider.Complete(context.Background(), ask("hi")); err != nil {
			t.Fatal(err)
		}
		if got := string(fake.Requests()[0].Body.KeepAlive); got != tc.wire {
			t.Errorf("keep_alive: %s sent as %s, want %s", tc.yaml, got, tc.wire)
		}
	}
	d, rs := parseDeployment(t, "model: ollama/llama3\nkeep_alive: soon", "", nil)
	if _, err := worker.FromDeployment(d, rs); err == nil || !strings.Contains(err.Error(), "keep_alive") {
		t.Errorf("keep_alive soon: %v, want an error naming it", err)
	}
}

func TestWarmUp_TakesAHostSlot(t *testing.T) {
	t.Parallel()
	e := setup(t)
	hold := make(chan struct{})
	host := gpuHost(t, 2, hold)
	budget, err := worker.NewHostBudget(1)
	if err != nil {
		t.Fatal(err)
	}
	coder := e.worker(ollamaOn(t, host.URL(), "coder:14b"), func(c *worker.Config) {
		c.Tier, c.Deployment, c.Model, c.HostBudget = "t-code", "d-code", "coder:14b", budget
	})
	running := e.requestAsync(job(t, coder, ask("hi")))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := host.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 1 }); err != nil {
		t.Fatal(err)
	}
	// The chat worker's warm-up waits for the host's one slot.
	started := make(chan *worker.Worker, 1)
	go func() {
		started <- e.worker(ollamaOn(t, host.URL(), "chat:8b"), func(c *worker.Config) {
			c.Tier, c.Deployment, c.Model, c.HostBudget, c.WarmUp = "t-chat", "d-chat", "chat:8b", budget, true
		})
	}()
	select {
	case <-started:
		t.Fatal("the warm-up ran while the host's one slot was busy")
	case <-time.After(300 * time.Millisecond): // a bound on a non-event: the warm-up takes a few ms
	}
	close(hold)
	if m := awaitReply(t, running); m.Header.Get(schema.HeaderStatus) != "" {
		t.Fatalf("job failed: %s", m.Data)
	}
	<-started
	if got := host.MaxInFlight(); got != 1 {
		t.Errorf("the host ran %d calls at once (a job and a warm-up), want the budget's 1", got)
	}
	if got := host.Loaded(); !slices.Equal(got, []string{"chat:8b", "coder:14b"}) {
		t.Errorf("loaded %v, want both", got)
	}
}
