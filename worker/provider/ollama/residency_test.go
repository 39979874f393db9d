package ollama_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// hostFake is a GPU host with two models and room for one.
func hostFake(t *testing.T) *ollamatest.Server {
	return ollamatest.NewServer(t, ollamatest.Config{Models: []string{"coder:14b", "chat:8b"}, MaxLoaded: 1,
		LoadTime: 150 * time.Millisecond, Parallel: 4})
}

func newOn(t *testing.T, base, model string, opts ...ollama.Option) *ollama.Provider {
	t.Helper()
	client := provider.NewHTTPClient()
	t.Cleanup(client.CloseIdleConnections)
	p, err := ollama.New(provider.Options{Model: model, APIBase: base, HTTP: client}, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func hiRequest() *schema.Request { return &schema.Request{Messages: []schema.Message{user("hi")}} }

func TestResidency_PsAndOwnCallsTellWhetherTheModelIsLoaded(t *testing.T) {
	t.Parallel()
	fake := hostFake(t)
	coder, chat := newOn(t, fake.URL(), "coder:14b"), newOn(t, fake.URL(), "chat:8b")
	ctx := context.Background()
	if r := coder.Residency(); r.Known || r.Warm {
		t.Fatalf("before anything: %+v, want unknown", r)
	}
	if err := coder.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := coder.Residency(); !r.Known || r.Warm || len(r.Loaded) != 0 {
		t.Fatalf("empty host: %+v, want known and cold", r)
	}
	if _, err := coder.Complete(ctx, hiRequest()); err != nil {
		t.Fatal(err)
	}
	r := coder.Residency()
	if !r.Warm || r.LoadTime < 150*time.Millisecond || !r.Stale {
		t.Fatalf("after a cold call: %+v, want warm, the load time learned, stale", r)
	}
	// The other model's call evicts coder; the host's list says so.
	if _, err := chat.Stream(ctx, hiRequest(), func(schema.ChunkChoice) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := coder.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	r = coder.Residency()
	if r.Warm || !slices.Equal(r.Loaded, []string{"chat:8b"}) || r.Stale {
		t.Fatalf("after chat loaded: %+v, want cold with chat loaded", r)
	}
	if r := chat.Residency(); !r.Warm || r.LoadTime < 150*time.Millisecond {
		t.Fatalf("chat after its streamed cold call: %+v", r)
	}
}

func TestResidency_RunningCallCountsAsWarm(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	fake := ollamatest.NewServer(t, ollamatest.Config{Models: []string{"coder:14b"}, MaxLoaded: 1, Hold: hold})
	p := newOn(t, fake.URL(), "coder:14b")
	done := make(chan error, 1)
	go func() { _, err := p.Complete(context.Background(), hiRequest()); done <- err }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 1 }); err != nil {
		t.Fatal(err)
	}
	if r := p.Residency(); !r.Known || !r.Warm {
		t.Errorf("during a call: %+v, want warm", r)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestKeepAlive_SentAsConfigured(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, wire string }{{"10m", `"10m"`}, {"0", `0`}, {"-1", `-1`}, {"300", `300`}, {"", ""}} {
		fake := ollamatest.NewServer(t, ollamatest.Config{})
		p := newOn(t, fake.URL(), ollamatest.DefaultModel, ollama.WithKeepAlive(tc.in))
		if _, err := p.Complete(context.Background(), hiRequest()); err != nil {
			t.Fatal(err)
		}
		if got := string(lastChat(t, fake).Body.KeepAlive); got != tc.wire {
			t.Errorf("keep_alive %q sent as %s, want %s", tc.in, got, tc.wire)
		}
	}
	if _, err := ollama.New(provider.Options{Model: "m"}, ollama.WithKeepAlive("soon")); err == nil || !strings.Contains(err.Error(), "keep_alive") {
		t.Errorf("keep_alive soon: %v, want an error naming keep_alive", err)
	}
}

func TestKeepAlive_ZeroUnloadsTheModelOnTheHost(t *testing.T) {
	t.Parallel()
	fake := hostFake(t)
	p := newOn(t, fake.URL(), "coder:14b", ollama.WithKeepAlive("0"))
	if _, err := p.Complete(context.Background(), hiRequest()); err != nil {
		t.Fatal(err)
	}
	if got := fake.Loaded(); len(got) != 0 {
		t.Errorf("loaded after keep_alive 0: %v", got)
	}
}

func TestWarm_LoadsTheModelBeforeAnyJob(t *testing.T) {
	t.Parallel()
	fake := hostFake(t)
	p := newOn(t, fake.URL(), "chat:8b", ollama.WithKeepAlive("1h"))
	if err := p.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fake.Loaded(); !slices.Equal(got, []string{"chat:8b"}) {
		t.Errorf("loaded = %v", got)
	}
	if r := p.Residency(); !r.Warm || r.LoadTime < 150*time.Millisecond {
		t.Errorf("after warm-up: %+v", r)
	}
	req := fake.Requests()[0]
	if req.Body == nil || len(req.Body.Messages) != 0 || string(req.Body.KeepAlive) != `"1h"` {
		t.Errorf("warm-up body %s", req.Raw)
	}
}

func TestRefresh_HostThatCannotListLeavesResidencyUnknown(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Key: "secret-key"})
	p := newOn(t, fake.URL(), ollamatest.DefaultModel)
	err := p.Refresh(context.Background())
	var e *schema.Error
	if !errors.As(err, &e) || e.Code != schema.CodeAuthentication || strings.Contains(err.Error(), "secret-key") {
		t.Fatalf("err = %v, want a typed authentication error", err)
	}
	if r := p.Residency(); r.Known {
		t.Errorf("residency %+v, want unknown", r)
	}
}

func TestRefresh_HostileListIsBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", provider.MaxResidentName+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString(`{"models":[{"name":"` + long + `"}`)
		for i := range 200 {
			fmt.Fprintf(&b, `,{"name":"m%d:latest"}`, i)
		}
		b.WriteString(`]}`)
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	p := newOn(t, srv.URL, "m1")
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := p.Residency()
	if len(r.Loaded) != provider.MaxResident || slices.Contains(r.Loaded, long) || !r.Warm {
		t.Errorf("%d names (long one kept: %v), warm %v; want %d short names and m1 warm", len(r.Loaded), slices.Contains(r.Loaded, long), r.Warm, provider.MaxResident)
	}
}
