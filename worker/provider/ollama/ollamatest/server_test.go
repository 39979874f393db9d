package ollamatest_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// do sends a raw request and returns status, content type and body.
func do(t *testing.T, method, url, body string) (int, string, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestFakeRejectsWhatOllamaRejects(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	chat := fake.URL() + "/api/chat"
	for _, tc := range []struct {
		name, method, url, body string
		status                  int
		want                    string // the exact body
	}{
		{"no body", "POST", chat, "", 400, `{"error":"missing request body"}`},
		{"no model", "POST", chat, `{"messages":[]}`, 400, `{"error":"model is required"}`},
		{"model not pulled", "POST", chat, `{"model":"llama3","messages":[]}`, 404,
			`{"error":"model \"llama3\" not found, try pulling it first"}`},
		{"content not a string", "POST", chat,
			`{"model":"qwen2.5-coder:14b","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`, 400, ""},
		{"unknown field", "POST", chat, `{"model":"qwen2.5-coder:14b","messages":[],"max_tokens":3}`, 400,
			`{"error":"json: unknown field \"max_tokens\""}`},
		{"OpenAI name field", "POST", chat,
			`{"model":"qwen2.5-coder:14b","messages":[{"role":"user","content":"x","name":"a"}]}`, 400,
			`{"error":"json: unknown field \"name\""}`},
		{"unknown role", "POST", chat, `{"model":"qwen2.5-coder:14b","messages":[{"role":"developer","content":"x"}]}`, 400, ""},
		{"unknown option", "POST", chat, `{"model":"qwen2.5-coder:14b","messages":[],"options":{"max_tokens":3}}`, 400, ""},
		{"option of the wrong type", "POST", chat,
			`{"model":"qwen2.5-coder:14b","messages":[],"options":{"temperature":"hot"}}`, 500,
			`{"error":"option \"temperature\" must be of type float32"}`},
		{"stop not strings", "POST", chat, `{"model":"qwen2.5-coder:14b","messages":[],"options":{"stop":[1]}}`, 500,
			`{"error":"option \"stop\" must be of an array of strings"}`},
		{"bad keep_alive", "POST", chat, `{"model":"qwen2.5-coder:14b","messages":[],"keep_alive":"soon"}`, 400, ""},
		{"wrong method", "GET", chat, "", 405, "405 method not allowed"},
		{"unknown path", "POST", fake.URL() + "/v1/api/chat", "{}", 404, "404 page not found"},
	} {
		status, _, body := do(t, tc.method, tc.url, tc.body)
		if status != tc.status || (tc.want != "" && body != tc.want) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.want)
		}
	}
}

func TestFakeBusyBodyIsOllamas(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Fail: ollamatest.Busy()})
	status, _, body := do(t, "POST", fake.URL()+"/api/chat", `{"model":"qwen2.5-coder:14b","messages":[{"role":"user","content":"x"}]}`)
	if want := `{"error":"server busy, please try again.  maximum pending requests exceeded"}`; status != 503 || body != want {
		t.Errorf("busy answer = %d %s, want 503 %s", status, body, want)
	}
}

func TestFakeStreamsByDefault(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	status, ctype, body := do(t, "POST", fake.URL()+"/api/chat",
		`{"model":"qwen2.5-coder:14b","messages":[{"role":"system","content":"be nice"},{"role":"user","content":"hi you"}]}`)
	if status != 200 || ctype != "application/x-ndjson" {
		t.Fatalf("answer %d %q, want 200 application/x-ndjson", status, ctype)
	}
	var lines []ollamatest.ChatResponse
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var r ollamatest.ChatResponse
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, r)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 3 tokens and the final one:\n%s", len(lines), body)
	}
	var text strings.Builder
	for _, l := range lines[:3] {
		if l.Done || l.Message.Role != "assistant" || l.Model != "qwen2.5-coder:14b" || l.CreatedAt.IsZero() {
			t.Errorf("token line %+v", l)
		}
		text.WriteString(l.Message.Content)
	}
	last := lines[3]
	if text.String() != "echo: hi you" || !last.Done || last.DoneReason != "stop" || last.Message.Content != "" ||
		last.PromptEvalCount != 4 || last.EvalCount != 3 || last.TotalDuration <= 0 {
		t.Errorf("text %q, final line %+v", text.String(), last)
	}
}

func TestFakeAnswersWholeWhenStreamIsFalse(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "a b"})
	status, ctype, body := do(t, "POST", fake.URL()+"/api/chat",
		`{"model":"qwen2.5-coder:14b","stream":false,"messages":[{"role":"user","content":"x"}],"options":{"num_predict":1}}`)
	var r ollamatest.ChatResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil || status != 200 || ctype != "application/json; charset=utf-8" {
		t.Fatalf("answer %d %q %s: %v", status, ctype, body, err)
	}
	if !r.Done || r.DoneReason != "length" || r.Message.Content != "a" || r.EvalCount != 1 {
		t.Errorf("reply %+v, want done, length, \"a\"", r)
	}
}

func TestFakeLoadsModelForEmptyChat(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	_, _, body := do(t, "POST", fake.URL()+"/api/chat", `{"model":"qwen2.5-coder:14b","messages":[]}`)
	var r ollamatest.ChatResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil || !r.Done || r.DoneReason != "load" {
		t.Errorf("answer %s (%v), want done_reason load", body, err)
	}
}

func TestFakeListsModelsWithTags(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Models: []string{"llama3", "qwen2.5-coder:14b"}})
	status, _, body := do(t, "GET", fake.URL()+"/api/tags", "")
	var tags ollamatest.TagsResponse
	if err := json.Unmarshal([]byte(body), &tags); err != nil || status != 200 {
		t.Fatalf("answer %d %s: %v", status, body, err)
	}
	if len(tags.Models) != 2 || tags.Models[0].Name != "llama3:latest" || tags.Models[1].Model != "qwen2.5-coder:14b" {
		t.Errorf("models = %+v", tags.Models)
	}
	// A chat for the untagged name finds name:latest.
	status, _, body = do(t, "POST", fake.URL()+"/api/chat", `{"model":"llama3","stream":false,"messages":[{"role":"user","content":"x"}]}`)
	if status != 200 {
		t.Errorf("chat for llama3: %d %s", status, body)
	}
}
