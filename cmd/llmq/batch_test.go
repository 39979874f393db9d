package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The batch workflow end to end through the CLI against `llmq up` (which
// runs JetStream in a temporary store and a batch runner).
func TestCLI_BatchWorkflow(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	var b strings.Builder
	const good = 200
	for i := range good {
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"tier%d","messages":[{"role":"user","content":"say %d"}],"max_tokens":4}}`+"\n", i, 1+i%3, i)
		if i == 10 {
			b.WriteString("{not json\n") // line 12
		}
		if i == 20 {
			b.WriteString(`{"custom_id":"req-3","body":{"model":"tier1","messages":[{"role":"user","content":"again"}]}}` + "\n") // line 23
			b.WriteString(`{"custom_id":"x","body":{"model":"tier1","messages":[{"role":"wizard","content":"hi"}]}}` + "\n")      // line 24
		}
	}
	path := filepath.Join(t.TempDir(), "jobs.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := u.run(t, "batch", "submit", path)
	if err == nil || !strings.Contains(err.Error(), "3 lines") {
		t.Fatalf("submit with bad lines: err %v, want one naming 3 lines; stderr:\n%s", err, errOut)
	}
	id := strings.TrimSpace(out)
	if !strings.HasPrefix(id, "batch_") {
		t.Fatalf("stdout %q, want the batch id", out)
	}
	for _, want := range []string{"jobs.jsonl:12: not a JSON object", `jobs.jsonl:23: custom_id "req-3" is already on line 4`,
		"jobs.jsonl:24: body.messages[0].role", fmt.Sprintf("%d jobs submitted, 0 already there, 3 bad lines", good), "100%"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	out, _, err = u.run(t, "batch", "status", id, "--watch", "--interval", "100ms")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "completed") || !strings.Contains(last, fmt.Sprintf("done %d", good)) {
		t.Fatalf("last status line %q", last)
	}

	out, errOut, err = u.run(t, "batch", "results", id)
	if err != nil {
		t.Fatal(err, errOut)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			ID       string `json:"id"`
			CustomID string `json:"custom_id"`
			Response struct {
				StatusCode int `json:"status_code"`
				Body       struct {
					Object  string `json:"object"`
					Choices []struct {
						Message struct{ Content string } `json:"message"`
					} `json:"choices"`
				} `json:"body"`
			} `json:"response"`
			Error *json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("result line %q: %v", l, err)
		}
		if seen[r.CustomID] {
			t.Fatalf("%s twice", r.CustomID)
		}
		seen[r.CustomID] = true
		n := strings.TrimPrefix(r.CustomID, "req-")
		if r.Response.StatusCode != 200 || r.Response.Body.Object != "chat.completion" || r.Error != nil ||
			!strings.HasPrefix(r.ID, "batch_req_") || !strings.Contains(r.Response.Body.Choices[0].Message.Content, "say "+n) {
			t.Fatalf("result %s", l)
		}
	}
	if len(seen) != good {
		t.Fatalf("%d results, want %d", len(seen), good)
	}

	_, errOut, _ = u.run(t, "batch", "submit", path, "-q")
	if !strings.Contains(errOut, fmt.Sprintf("0 jobs submitted, %d already there", good)) {
		t.Fatalf("resubmit: %s", errOut)
	}
	out, _, err = u.run(t, "batch", "list")
	if err != nil || strings.TrimSpace(out) != id {
		t.Fatalf("list: %q %v", out, err)
	}
	if _, _, err := u.run(t, "batch", "status", "no-such-batch"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("status of an unknown batch: %v", err)
	}
}
