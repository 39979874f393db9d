package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
)

func TestCLI_UpDemo_CompleteAnswersEveryTier(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	for _, tier := range []string{"tier1", "tier2", "tier3"} {
		out, _, err := u.run(t, "complete", "--tier", tier, "--max-tokens", "4", "queues are nice")
		if err != nil {
			t.Fatalf("%s: %v", tier, err)
		}
		if got, want := strings.TrimSpace(out), "queues are nice queues"; got != want {
			t.Errorf("%s answered %q, want %q", tier, got, want)
		}
	}
	if !strings.Contains(u.Stdout.String(), "llmq complete --tier tier1") {
		t.Errorf("up did not print how to send a job:\n%s", u.Stdout.String())
	}
}

func TestCLI_Complete_JSONShowsRouting(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	out, _, err := u.run(t, "complete", "--tier", "tier2", "--json", "--codec", "json", "hello")
	if err != nil {
		t.Fatal(err)
	}
	var resp schema.Response
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if resp.Object != "chat.completion" || resp.Routing == nil || resp.Routing.Tier != "tier2" || resp.Routing.Deployment != "tier2-flash" || resp.Routing.Provider != "sim" {
		t.Fatalf("reply %+v routing %+v", resp, resp.Routing)
	}
}

func TestCLI_Complete_StreamPrintsTokens(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	out, _, err := u.run(t, "complete", "--tier", "tier1", "--stream", "--json", "--max-tokens", "3", "a b")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 { // three tokens, then the final chunk
		t.Fatalf("want 4 chunk lines, got %d:\n%s", len(lines), out)
	}
	var text strings.Builder
	for i, l := range lines {
		var c schema.Chunk
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if c.Object != schema.ObjectChunk {
			t.Fatalf("line %d object %q", i, c.Object)
		}
		text.WriteString(c.Choices[0].Delta.Content)
		if i == len(lines)-1 {
			if c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "length" || c.Usage == nil || c.Usage.CompletionTokens != 3 {
				t.Fatalf("last chunk %s", l)
			}
		}
	}
	if text.String() != "a b a" {
		t.Fatalf("streamed text %q", text.String())
	}
}

func TestCLI_Complete_UnknownTierFailsWithTypedError(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	_, _, err := u.run(t, "complete", "--tier", "nope", "hi")
	if schema.CodeOf(err) != schema.CodeUnknownTier || exitCode(err) != 1 {
		t.Fatalf("err = %v (exit %d), want unknown_tier and exit 1", err, exitCode(err))
	}
}

func TestCLI_Status_ListsEveryWorker(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	out, _, err := u.run(t, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var hbs []schema.Heartbeat
	if err := json.Unmarshal([]byte(out), &hbs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]bool{}
	for _, hb := range hbs {
		got[hb.Deployment] = hb.State == schema.StateReady && hb.Capacity > 0
	}
	for _, dep := range []string{"tier1-gpu-a", "tier1-gpu-b", "tier2-flash", "tier3-sonnet"} {
		if !got[dep] {
			t.Errorf("status lacks ready worker of %s: %s", dep, out)
		}
	}
	table, _, err := u.run(t, "status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "TIER") || !strings.Contains(table, "tier1-gpu-b") {
		t.Fatalf("table:\n%s", table)
	}
}

func TestCLI_Up_MissingEnvVarNamesVariableAndDeployment(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.yaml")
	cfg := "model_list:\n  - model_name: tier2\n    litellm_params:\n      model: gemini/gemini-1.5-flash\n      api_key: os.environ/LLMQ_TEST_SURELY_UNSET_KEY\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut := newOutBuf(), newOutBuf()
	cmd := newApp(out, errOut).root()
	cmd.SetArgs([]string{"up", "-c", path, "--listen", "127.0.0.1:-1"})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "LLMQ_TEST_SURELY_UNSET_KEY") || !strings.Contains(err.Error(), "tier2") {
		t.Fatalf("err = %v, want it to name the variable and the deployment", err)
	}
}

func TestCLI_Worker_UnknownProviderPrefixFailsAtStart(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	_, _, err := u.run(t, "worker", "--tier", "tier1", "--model", "mystery/model-x")
	if err == nil || !strings.Contains(err.Error(), `unknown provider prefix "mystery"`) {
		t.Fatalf("err = %v", err)
	}
}
