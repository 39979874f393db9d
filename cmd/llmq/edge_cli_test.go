package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
)

// The README's quickstart promises for tools, structured outputs, images
// and embeddings, against the demo fleet.

var toolCallRE = regexp.MustCompile(`(?m)^tool call call_sim_\d+: get_weather\(\{"city":"Paris","unit":"celsius"\}\)$`)

func TestCLI_Complete_ToolsPrintsTheModelsToolCall(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	tools := filepath.Join("..", "..", "examples", "tools.json")
	for _, stream := range []bool{false, true} {
		args := []string{"complete", "--tier", "tier1", "--tools", tools, "What is the weather in Paris?"}
		if stream {
			args = append(args, "--stream")
		}
		out, _, err := u.run(t, args...)
		if err != nil {
			t.Fatalf("stream %v: %v", stream, err)
		}
		if !toolCallRE.MatchString(out) || strings.Count(out, "\n") != 1 {
			t.Errorf("stream %v printed %q, want one line: tool call call_sim_N: get_weather({\"city\":\"Paris\",\"unit\":\"celsius\"})", stream, out)
		}
	}
	// --tool-choice none answers text; a forced unknown tool is refused
	// before sending.
	out, _, err := u.run(t, "complete", "--tier", "tier1", "--tools", tools, "--tool-choice", "none", "--max-tokens", "2", "weather in Paris")
	if err != nil || strings.TrimSpace(out) != "weather in" {
		t.Errorf("tool choice none: %q, %v", out, err)
	}
	_, _, err = u.run(t, "complete", "--tier", "tier1", "--tools", tools, "--tool-choice", "nope", "x")
	if schema.CodeOf(err) != schema.CodeBadRequest || !strings.Contains(err.Error(), "tool_choice.function.name") {
		t.Errorf("forced unknown tool: %v, want bad_request naming tool_choice.function.name", err)
	}
	_, _, err = u.run(t, "complete", "--tools", filepath.Join("..", "..", "examples", "city.schema.json"), "x")
	if err == nil || !strings.Contains(err.Error(), "--tools") {
		t.Errorf("a schema given as tools: %v, want an error naming --tools", err)
	}
}

func TestCLI_Complete_JSONSchemaAnswersMatchingJSON(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	out, _, err := u.run(t, "complete", "--tier", "tier1", "--json-schema", filepath.Join("..", "..", "examples", "city.schema.json"), "describe Rome")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != `{"capital":true,"name":"Rome","population":1}` {
		t.Fatalf("answer %q, want the README's", got)
	}
	// OpenAI's json_schema object is accepted too; the request carries it.
	obj := filepath.Join(t.TempDir(), "obj.json")
	if err := os.WriteFile(obj, []byte(`{"name":"pair","strict":true,"schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = u.run(t, "complete", "--tier", "tier1", "--json-schema", obj, "--json", "x")
	if err != nil {
		t.Fatal(err)
	}
	var resp schema.Response
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Text() != `{"a":1}` {
		t.Fatalf("reply %q (%v)", out, err)
	}
}

func TestCLI_Complete_ImageFileGoesAsDataURI(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	png := filepath.Join(t.TempDir(), "photo.png")
	if err := os.WriteFile(png, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := u.run(t, "complete", "--tier", "tier1", "--image", png, "--max-tokens", "3", "what is in this picture?")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != "what is in" {
		t.Fatalf("answer %q: want the prompt's words (the text part went with the image)", got)
	}
	txt := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(txt, []byte("plain text"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.run(t, "complete", "--image", txt, "x"); err == nil || !strings.Contains(err.Error(), "not an image") {
		t.Fatalf("a text file as image: %v", err)
	}
	if _, _, err := u.run(t, "complete", "--image", filepath.Join(t.TempDir(), "missing.png"), "x"); err == nil || !strings.Contains(err.Error(), "--image") {
		t.Fatalf("a missing image: %v", err)
	}
}

var embedLineRE = regexp.MustCompile(`^(\d+)\t8 dimensions\t\[(-?\d\.\d{4} ){4}…\]$`)

func TestCLI_Embed_PrintsEachVectorAndJSON(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	if !strings.Contains(u.Stdout.String(), `llmq embed --tier embed "queues are nice"`) || !strings.Contains(u.Stdout.String(), "--tools examples/tools.json") {
		t.Errorf("up did not print how to call a tool and embed:\n%s", u.Stdout.String())
	}
	out, _, err := u.run(t, "embed", "--tier", "embed", "queues are nice", "so is NATS")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), out)
	}
	for i, l := range lines {
		m := embedLineRE.FindStringSubmatch(l)
		if m == nil || m[1] != []string{"0", "1"}[i] {
			t.Errorf("line %q: want \"%d\\t8 dimensions\\t[a b c d …]\"", l, i)
		}
	}
	out, _, err = u.run(t, "embed", "--json", "--dimensions", "3", "--codec", "json", "one")
	if err != nil {
		t.Fatal(err)
	}
	var resp schema.EmbeddingResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Data) != 1 || len(resp.Data[0].Embedding.Floats) != 3 ||
		resp.Routing == nil || resp.Routing.Deployment != "embed-sim" {
		t.Fatalf("reply %s (%v)", out, err)
	}
	if _, _, err := u.run(t, "embed", "--tier", "tier1", "x"); schema.CodeOf(err) != schema.CodeBadRequest {
		t.Errorf("embed on a chat tier: %v, want bad_request", err)
	}
	if _, _, err := u.run(t, "complete", "--tier", "embed", "x"); schema.CodeOf(err) != schema.CodeBadRequest {
		t.Errorf("complete on the embedding tier: %v, want bad_request", err)
	}
}

func TestCLI_Worker_ModeEmbeddingFlagServesEmbeddingJobs(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	_, _, done, _ := u.background(t, "worker", "--tier", "vec", "--model", "sim/v", "--mode", "embedding", "--heartbeat", "200ms")
	deadline := time.Now().Add(wait)
	for {
		select {
		case err := <-done:
			t.Fatalf("worker ended: %v", err)
		default:
		}
		out, _, err := u.run(t, "embed", "--tier", "vec", "--json", "x")
		if err == nil {
			var resp schema.EmbeddingResponse
			if jerr := json.Unmarshal([]byte(out), &resp); jerr != nil || len(resp.Data) != 1 || resp.Routing.Tier != "vec" {
				t.Fatalf("reply %s (%v)", out, jerr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the embedding worker never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the worker's first beat has no event a CLI run can wait on
	}
	if _, _, err := u.run(t, "worker", "--tier", "x", "--model", "sim/x", "--mode", "rerank"); err == nil || !strings.Contains(err.Error(), "--mode") {
		t.Fatalf("--mode rerank: %v, want an error naming --mode", err)
	}
}
