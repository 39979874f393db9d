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

func TestFakeRejectsBadToolsImagesFormatAndThink(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	chat := fake.URL() + "/api/chat"
	const m = `"model":"qwen2.5-coder:14b","stream":false`
	const png1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
	asst := `{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_time","arguments":{}}}]}`
	for _, tc := range []struct {
		name, body string
		status     int
		want       string // a part of the body
	}{
		{"tool without a name", `{` + m + `,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":""}}]}`,
			400, "function name is required"},
		{"tool of another type", `{` + m + `,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web","function":{"name":"f"}}]}`,
			400, "invalid tool type"},
		{"tool with strict", `{` + m + `,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","strict":true}}]}`,
			400, `unknown field \"strict\"`},
		{"parameters not an object", `{` + m + `,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":"{}"}}]}`,
			400, "cannot unmarshal string"},
		{"arguments a string", `{` + m + `,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}]}`,
			400, "cannot unmarshal string"},
		{"tool result without tool_name", `{` + m + `,"messages":[{"role":"user","content":"x"},` + asst + `,{"role":"tool","content":"noon"}]}`,
			400, "needs tool_name"},
		{"tool result for no call", `{` + m + `,"messages":[{"role":"user","content":"x"},` + asst + `,{"role":"tool","content":"noon","tool_name":"other"}]}`,
			400, "answers no earlier tool call"},
		{"tool result before its call", `{` + m + `,"messages":[{"role":"user","content":"x"},{"role":"tool","content":"noon","tool_name":"get_time"},` + asst + `]}`,
			400, "answers no earlier tool call"},
		{"image as a data URI", `{` + m + `,"messages":[{"role":"user","content":"x","images":["data:image/png;base64,` + png1x1 + `"]}]}`,
			400, "illegal base64"},
		{"image not an image", `{` + m + `,"messages":[{"role":"user","content":"x","images":["aGVsbG8="]}]}`,
			500, "unknown format"},
		{"format a string", `{` + m + `,"messages":[{"role":"user","content":"x"}],"format":"yaml"}`, 400, "invalid format"},
		{"think a number", `{` + m + `,"messages":[{"role":"user","content":"x"}],"think":1}`, 400, "invalid think value"},
	} {
		status, _, body := do(t, "POST", chat, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d …%s…", tc.name, status, body, tc.status, tc.want)
		}
	}
	// The same shapes done right are served.
	for _, body := range []string{
		`{` + m + `,"messages":[{"role":"user","content":"x","images":["` + png1x1 + `"]},` + asst + `,{"role":"tool","content":"noon","tool_name":"get_time"}],` +
			`"tools":[{"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}],"format":{"type":"object"},"think":false}`,
		`{` + m + `,"messages":[{"role":"user","content":"x"}],"format":"json","think":"high"}`,
	} {
		if status, _, got := do(t, "POST", chat, body); status != 200 {
			t.Errorf("%s: %d %s, want 200", body, status, got)
		}
	}
}

func TestFakeAnswersToolCallsWholeAndStreamed(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Answer: func(ollamatest.ChatRequest) ollamatest.Answer {
		return ollamatest.Answer{ToolCalls: []ollamatest.ToolCall{
			{Function: ollamatest.ToolCallFunction{Name: "a", Arguments: json.RawMessage(`{"x":1}`)}},
			{Function: ollamatest.ToolCallFunction{Name: "b", Arguments: json.RawMessage(`{}`)}},
		}}
	}})
	chat := fake.URL() + "/api/chat"
	_, _, body := do(t, "POST", chat, `{"model":"qwen2.5-coder:14b","stream":false,"messages":[{"role":"user","content":"x"}]}`)
	want := `"tool_calls":[{"function":{"index":0,"name":"a","arguments":{"x":1}}},{"function":{"index":1,"name":"b","arguments":{}}}]`
	if !strings.Contains(body, want) || !strings.Contains(body, `"done":true`) {
		t.Errorf("whole answer %s, want %s", body, want)
	}
	_, _, body = do(t, "POST", chat, `{"model":"qwen2.5-coder:14b","messages":[{"role":"user","content":"x"}]}`)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"name":"a"`) || !strings.Contains(lines[1], `"index":1,"name":"b"`) ||
		!strings.Contains(lines[2], `"done":true`) || strings.Contains(lines[2], "tool_calls") {
		t.Errorf("stream %q, want one line per call, then the final line", lines)
	}
}

func TestFakeEmbedsAsOllama(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{EmbedModels: []string{"nomic-embed-text"}, EmbedDims: 4})
	embed := fake.URL() + "/api/embed"
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"no body", "", 400, `{"error":"missing request body"}`},
		{"no model", `{"input":"x"}`, 400, `{"error":"model is required"}`},
		{"no input", `{"model":"nomic-embed-text"}`, 400, `{"error":"input is required"}`},
		{"input a number", `{"model":"nomic-embed-text","input":3}`, 400, `{"error":"invalid input type"}`},
		{"input of numbers", `{"model":"nomic-embed-text","input":[1,2]}`, 400, `{"error":"invalid input type"}`},
		{"unknown field", `{"model":"nomic-embed-text","input":"x","encoding_format":"float"}`, 400, `{"error":"json: unknown field \"encoding_format\""}`},
		{"model not pulled", `{"model":"bge-m3","input":"x"}`, 404, `{"error":"model 'bge-m3' not found"}`},
	} {
		status, _, body := do(t, "POST", embed, tc.body)
		if status != tc.status || body != tc.want {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.want)
		}
	}
	status, _, body := do(t, "POST", embed, `{"model":"nomic-embed-text","input":"hello world"}`)
	var r ollamatest.EmbedResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil || status != 200 {
		t.Fatalf("answer %d %s: %v", status, body, err)
	}
	if r.Model != "nomic-embed-text" || len(r.Embeddings) != 1 || len(r.Embeddings[0]) != 4 || r.PromptEvalCount != 2 {
		t.Errorf("reply %+v", r)
	}
	// An embedding-only model does not chat.
	status, _, body = do(t, "POST", fake.URL()+"/api/chat", `{"model":"nomic-embed-text","messages":[{"role":"user","content":"x"}]}`)
	if status != 400 || body != `{"error":"\"nomic-embed-text\" does not support chat"}` {
		t.Errorf("chat with an embedding model: %d %s", status, body)
	}
}
