package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

func TestHostKey_SameHostWhateverTheSpelling(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b string }{
		{"http://GPU1:11434", "http://gpu1:11434/"},
		{"http://gpu1", "http://gpu1:80"},
		{"https://u:p@gpu1/ollama", "https://gpu1:443"},
	} {
		if hostKey(tc.a) != hostKey(tc.b) || hostKey(tc.a) == "" {
			t.Errorf("%q and %q: %q vs %q, want the same host", tc.a, tc.b, hostKey(tc.a), hostKey(tc.b))
		}
	}
	if hostKey("http://gpu1:11434") == hostKey("http://gpu2:11434") || hostKey("not a url") != "" {
		t.Error("different hosts compare equal, or a non-URL has a key")
	}
}

func TestHostDeployments_SelectsEveryDeploymentOfTheHost(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`model_list:
  - model_name: coder
    litellm_params: {model: ollama/coder:14b, api_base: http://gpu1:11434}
  - model_name: chat
    litellm_params: {model: ollama/chat:8b, api_base: "http://GPU1:11434/"}
  - model_name: coder
    litellm_params: {model: ollama/coder:14b, api_base: http://gpu2:11434}
  - model_name: local
    litellm_params: {model: ollama/llama3}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	deps, err := hostDeployments(cfg, "http://gpu1:11434")
	if err != nil || len(deps) != 2 || deps[0].ModelName != "coder" || deps[1].ModelName != "chat" {
		t.Fatalf("gpu1: %v, %v; want coder and chat", deps, err)
	}
	if deps, err := hostDeployments(cfg, "http://localhost:11434"); err != nil || len(deps) != 1 || deps[0].ModelName != "local" {
		t.Errorf("localhost: %v, %v; want the deployment without api_base", deps, err)
	}
	_, err = hostDeployments(cfg, "http://gpu9:11434")
	if err == nil || !strings.Contains(err.Error(), "http://gpu2:11434") {
		t.Errorf("unknown host: %v, want an error listing the config's hosts", err)
	}
	if n, err := defaultHostSlots(deps, &cfg.RouterSettings, 0); err != nil || n != 4 {
		t.Errorf("default host slots %d, %v; want Ollama's default concurrency 4", n, err)
	}
}

// TestWorker_PerHost_ServesEveryDeploymentOfItsHostWithinOneBudget runs
// `llmq worker -c config.yaml --api-base <host> --host-slots 2` against a
// config listing two models on that host (4 slots each) and one on
// another: the host never runs more than 2 calls, and the other host is
// not called.
func TestWorker_PerHost_ServesEveryDeploymentOfItsHostWithinOneBudget(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	a := ollamatest.NewServer(t, ollamatest.Config{Models: []string{"coder:14b", "chat:8b"}, MaxLoaded: 2, Parallel: 4, Hold: hold})
	b := ollamatest.NewServer(t, ollamatest.Config{Models: []string{"coder:14b"}})
	cfg := writeConfig(t, fmt.Sprintf(`model_list:
  - model_name: coder
    litellm_params: {model: ollama/coder:14b, api_base: %[1]s, max_parallel_requests: 4, keep_alive: 30m}
  - model_name: chat
    litellm_params: {model: ollama/chat:8b, api_base: %[1]s, max_parallel_requests: 4, keep_alive: 30m}
  - model_name: coder
    litellm_params: {model: ollama/coder:14b, api_base: %[2]s}
`, a.URL(), b.URL()))
	u := startUp(t, "-c", writeConfig(t, "model_list:\n  - model_name: other\n    litellm_params: {model: sim/x}\n"))

	wctx, stop := context.WithCancel(context.Background())
	werr := make(chan error, 1)
	wout := newOutBuf()
	go func() {
		cmd := newApp(wout, wout).root()
		cmd.SetArgs([]string{"worker", "-c", cfg, "--api-base", a.URL(), "--host-slots", "2", "--warm",
			"--nats", u.URL, "--prefix", u.Prefix, "--heartbeat", "200ms", "--log-format", "json"})
		werr <- cmd.ExecuteContext(wctx)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-werr:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("worker ended with %v", err)
			}
		case <-time.After(wait):
			t.Error("worker did not stop")
		}
	})
	wout.await(t, workerUp, werr)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tier := []string{"coder", "chat"}[i%2]
			var err error
			for try := 0; try < 100; try++ { // until the dispatcher has heard the worker
				if _, _, err = u.run(t, "complete", "--tier", tier, "hi"); err == nil || !strings.Contains(err.Error(), "no worker serves") && !strings.Contains(err.Error(), "unknown") {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			errs <- err
		}()
	}
	ctx, cancel := contextWithWait()
	defer cancel()
	if err := a.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 2 }); err != nil {
		t.Fatal(err)
	}
	// A bound on a non-event: with 8 slots of its own, the worker would
	// have run the waiting jobs by now.
	short, cancelShort := context.WithTimeout(context.Background(), time.Second)
	defer cancelShort()
	if err := a.Await(short, func(s ollamatest.Stats) bool { return s.InFlight > 2 }); err == nil {
		t.Fatalf("host ran %d calls at once, over its 2 slots", a.InFlight())
	}
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if a.MaxInFlight() != 2 {
		t.Errorf("host a ran %d at once", a.MaxInFlight())
	}
	// --warm loaded each model once, before the jobs; keep_alive kept them.
	if st := a.Stats(); st.Loads != 2 || st.Unloads != 0 {
		t.Errorf("host a: %d loads, %d unloads; want the 2 warm-ups only", st.Loads, st.Unloads)
	}
	for _, r := range a.Requests() {
		if r.Body != nil && string(r.Body.KeepAlive) != `"30m"` {
			t.Errorf("a chat without the deployment's keep_alive: %s", r.Raw)
		}
	}
	for _, r := range b.Requests() {
		if r.Path == "/api/chat" {
			t.Fatalf("host b was called (%s): the worker serves only host a", r.Path)
		}
	}
}
