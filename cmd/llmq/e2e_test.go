package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// Distinctive keys: the secrets test looks for them in everything llmq
// printed or answered.
const (
	geminiKey    = "AIzaSy-LLMQ-TEST-SECRET-gem-7f3a"
	anthropicKey = "sk-ant-LLMQ-TEST-SECRET-ant-91c2"
)

// writeConfig writes a config file for the test and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// seedConfig is examples/three-tier.yaml with api_base pointing at fakes
// and the keys given in environment_variables.
func seedConfig(t *testing.T, ollamaURL, geminiURL, anthropicURL string) string {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join("..", "..", "examples", "three-tier.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(seed)
	cfg = strings.Replace(cfg, "api_base: http://localhost:11434", "api_base: "+ollamaURL, 1)
	cfg = strings.Replace(cfg, "      api_key: os.environ/GEMINI_API_KEY", "      api_key: os.environ/GEMINI_API_KEY\n      api_base: "+geminiURL, 1)
	cfg = strings.Replace(cfg, "      api_key: os.environ/ANTHROPIC_API_KEY", "      api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: "+anthropicURL, 1)
	cfg += fmt.Sprintf("\nenvironment_variables:\n  GEMINI_API_KEY: %s\n  ANTHROPIC_API_KEY: %s\n", geminiKey, anthropicKey)
	if strings.Count(cfg, "api_base:") != 3 {
		t.Fatalf("seed config changed shape; fix the test's rewrite:\n%s", cfg)
	}
	return writeConfig(t, cfg)
}

func TestE2E_SeedThreeTiers_AnswerAgainstFakeProviders_PlainAndStreamed(t *testing.T) {
	t.Parallel()
	ol := ollamatest.NewServer(t, ollamatest.Config{})
	gm := geminitest.NewServer(t, geminitest.Config{Key: geminiKey})
	an := anthropictest.NewServer(t, anthropictest.Config{Key: anthropicKey})
	u := startUp(t, "-c", seedConfig(t, ol.URL(), gm.URL(), an.URL()))
	for _, tier := range []string{"tier1", "tier2", "tier3"} {
		out, _, err := u.run(t, "complete", "--tier", tier, "hello from "+tier)
		if err != nil {
			t.Fatalf("%s plain: %v", tier, err)
		}
		if got := strings.TrimSpace(out); got != "echo: hello from "+tier {
			t.Errorf("%s plain answered %q", tier, got)
		}
		out, _, err = u.run(t, "complete", "--tier", tier, "--stream", "streamed words here")
		if err != nil {
			t.Fatalf("%s streamed: %v", tier, err)
		}
		if got := strings.TrimSpace(out); got != "echo: streamed words here" {
			t.Errorf("%s streamed %q", tier, got)
		}
	}
	if n := len(ol.Requests()); n < 3 { // /api/tags at start, then two chats
		t.Errorf("ollama fake saw %d requests", n)
	}
	if len(gm.Requests()) != 2 || len(an.Requests()) != 2 {
		t.Errorf("gemini saw %d, anthropic %d requests; want 2 each", len(gm.Requests()), len(an.Requests()))
	}
}

func TestE2E_TwoOllamaHostsInOneTier_BothUsed(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	a := ollamatest.NewServer(t, ollamatest.Config{Hold: hold})
	b := ollamatest.NewServer(t, ollamatest.Config{Hold: hold})
	cfg := fmt.Sprintf(`model_list:
  - model_name: tier1
    litellm_params: {model: ollama/qwen2.5-coder:14b, api_base: %s, max_parallel_requests: 2}
  - model_name: tier1
    litellm_params: {model: ollama/qwen2.5-coder:14b, api_base: %s, max_parallel_requests: 2}
router_settings: {routing_strategy: least-busy}
`, a.URL(), b.URL())
	u := startUp(t, "-c", writeConfig(t, cfg))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := u.run(t, "complete", "--tier", "tier1", fmt.Sprintf("job %d", i))
			errs <- err
		}()
	}
	// Four jobs, two slots per host: both hosts must hold two at once.
	for _, s := range []*ollamatest.Server{a, b} {
		ctx, cancel := contextWithWait()
		err := s.Await(ctx, func(st ollamatest.Stats) bool { return st.InFlight == 2 })
		cancel()
		if err != nil {
			t.Fatalf("host %s never had 2 chats in flight: %v (stats %+v)", s.URL(), err, s.Stats())
		}
	}
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestE2E_Secrets_NeverInLogsErrorsOrReplies(t *testing.T) {
	t.Parallel()
	ol := ollamatest.NewServer(t, ollamatest.Config{})
	gm := geminitest.NewServer(t, geminitest.Config{Key: geminiKey})
	// The Anthropic fake wants another key: every tier3 call fails with 401,
	// an error path that could leak the key that was sent.
	an := anthropictest.NewServer(t, anthropictest.Config{Key: "sk-ant-the-right-one"})
	u := startUp(t, "-c", seedConfig(t, ol.URL(), gm.URL(), an.URL()), "--log-level", "debug")
	var seen strings.Builder
	for _, args := range [][]string{
		{"complete", "--tier", "tier2", "--json", "hi"},
		{"complete", "--tier", "tier2", "--stream", "--json", "hi"},
		{"complete", "--tier", "tier3", "--json", "hi"},
		{"complete", "--tier", "tier3", "--stream", "--json", "hi"},
		{"status", "--json"},
	} {
		out, errOut, err := u.run(t, args...)
		seen.WriteString(out + errOut)
		if err != nil {
			seen.WriteString(err.Error())
		}
		if len(args) > 2 && args[2] == "tier3" && schema.CodeOf(err) != schema.CodeAuthentication {
			t.Errorf("%v: err = %v, want authentication", args, err)
		}
	}
	if err := u.stop(); err != nil {
		t.Fatal(err)
	}
	seen.WriteString(u.Stdout.String() + u.Stderr.String())
	all := seen.String()
	if !strings.Contains(all, "authentication") {
		t.Fatalf("the error path did not run; output:\n%s", all)
	}
	for _, key := range []string{geminiKey, anthropicKey} {
		if strings.Contains(all, key) {
			t.Fatalf("key %q appears in llmq's output", key)
		}
	}
}
