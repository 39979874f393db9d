package anthropictest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "sk-ant-fake-key"

// call sends body to the fake with the given header edits and returns the
// status, headers and body of the answer.
func call(t *testing.T, s *anthropictest.Server, method, path, body string, edit func(http.Header)) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	if edit != nil {
		edit(req.Header)
	}
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const valid = `{"model":"claude-x","max_tokens":64,"messages":[{"role":"user","content":"hi there"}]}`

func TestRejectsWhatTheAPIRejects(t *testing.T) {
	t.Parallel()
	s := anthropictest.NewServer(t, anthropictest.Config{Key: key})
	for _, tc := range []struct {
		name, method, path, body string
		edit                     func(http.Header)
		status                   int
		typ, message             string
	}{
		{name: "wrong path", path: "/v1/chat/completions", status: 404, typ: "not_found_error"},
		{name: "GET", method: "GET", status: 405, typ: "invalid_request_error"},
		{name: "no key", edit: func(h http.Header) { h.Del("X-Api-Key") }, status: 401,
			typ: "authentication_error", message: "x-api-key header is required"},
		{name: "bearer instead of x-api-key", edit: func(h http.Header) {
			h.Del("X-Api-Key")
			h.Set("Authorization", "Bearer "+key)
		}, status: 401, typ: "authentication_error"},
		{name: "wrong key", edit: func(h http.Header) { h.Set("X-Api-Key", "nope") }, status: 401,
			typ: "authentication_error", message: "invalid x-api-key"},
		{name: "no version", edit: func(h http.Header) { h.Del("Anthropic-Version") }, status: 400,
			typ: "invalid_request_error", message: "anthropic-version: header is required"},
		{name: "bad version", edit: func(h http.Header) { h.Set("Anthropic-Version", "2099-01-01") }, status: 400,
			typ: "invalid_request_error"},
		{name: "not json", edit: func(h http.Header) { h.Set("Content-Type", "text/plain") }, status: 400,
			typ: "invalid_request_error"},
		{name: "malformed body", body: `{"model":`, status: 400, typ: "invalid_request_error"},
		{name: "no model", body: `{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, status: 400,
			typ: "invalid_request_error", message: "model: Field required"},
		{name: "no max_tokens", body: `{"model":"m","messages":[{"role":"user","content":"x"}]}`, status: 400,
			typ: "invalid_request_error", message: "max_tokens: Field required"},
		{name: "zero max_tokens", body: `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`,
			status: 400, typ: "invalid_request_error"},
		{name: "no messages", body: `{"model":"m","max_tokens":5}`, status: 400,
			typ: "invalid_request_error", message: "messages: Field required"},
		{name: "empty messages", body: `{"model":"m","max_tokens":5,"messages":[]}`, status: 400,
			typ: "invalid_request_error", message: "messages: at least one message is required"},
		{name: "system role", body: `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"s"},{"role":"user","content":"x"}]}`,
			status: 400, typ: "invalid_request_error",
			message: "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role."},
		{name: "tool role", body: `{"model":"m","max_tokens":5,"messages":[{"role":"tool","content":"x"}]}`,
			status: 400, typ: "invalid_request_error", message: "messages.0.role: Input should be 'user' or 'assistant'"},
		{name: "assistant first", body: `{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":"x"},{"role":"user","content":"y"}]}`,
			status: 400, typ: "invalid_request_error", message: `messages: first message must use the "user" role`},
		{name: "empty user content", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":""}]}`,
			status: 400, typ: "invalid_request_error",
			message: "messages.0: all messages must have non-empty content except for the optional final assistant message"},
		{name: "final assistant trailing space", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y "}]}`,
			status: 400, typ: "invalid_request_error", message: "messages: final assistant content cannot end with trailing whitespace"},
		{name: "unknown field", body: `{"model":"m","max_tokens":5,"stop":["x"],"messages":[{"role":"user","content":"x"}]}`,
			status: 400, typ: "invalid_request_error", message: "stop: Extra inputs are not permitted"},
		{name: "temperature over 1", body: `{"model":"m","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"x"}]}`,
			status: 400, typ: "invalid_request_error", message: "temperature: range: 0..1"},
		{name: "whitespace stop", body: `{"model":"m","max_tokens":5,"stop_sequences":["\n"],"messages":[{"role":"user","content":"x"}]}`,
			status: 400, typ: "invalid_request_error", message: "stop_sequences: each stop sequence must contain non-whitespace"},
		{name: "other metadata", body: `{"model":"m","max_tokens":5,"metadata":{"trace":"t"},"messages":[{"role":"user","content":"x"}]}`,
			status: 400, typ: "invalid_request_error", message: "metadata.trace: Extra inputs are not permitted"},
		{name: "max_tokens not a number", body: `{"model":"m","max_tokens":"5","messages":[{"role":"user","content":"x"}]}`,
			status: 400, typ: "invalid_request_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			method, path, body := tc.method, tc.path, tc.body
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/v1/messages"
			}
			if body == "" {
				body = valid
			}
			status, h, got := call(t, s, method, path, body, tc.edit)
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(got), &e); err != nil {
				t.Fatalf("body %q: %v", got, err)
			}
			if status != tc.status || e.Type != "error" || e.Error.Type != tc.typ ||
				(tc.message != "" && e.Error.Message != tc.message) {
				t.Errorf("got %d %s", status, got)
			}
			if h.Get("Request-Id") == "" || e.RequestID != h.Get("Request-Id") {
				t.Errorf("request-id header %q, body %q", h.Get("Request-Id"), e.RequestID)
			}
		})
	}
}

func TestAcceptsWhatTheAPIAccepts(t *testing.T) {
	t.Parallel()
	s := anthropictest.NewServer(t, anthropictest.Config{})
	for name, body := range map[string]string{
		"consecutive users": `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
		"content blocks and system blocks": `{"model":"m","max_tokens":5,"system":[{"type":"text","text":"s"}],
			"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
		"empty final assistant": `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":""}]}`,
		"every parameter": `{"model":"m","max_tokens":5,"system":"s","stop_sequences":["x"],"temperature":0,"top_p":1,"top_k":3,
			"stream":false,"metadata":{"user_id":"u"},"messages":[{"role":"user","content":"a"}]}`,
		"old version": "",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var edit func(http.Header)
			if body == "" {
				body, edit = valid, func(h http.Header) { h.Set("Anthropic-Version", "2023-01-01") }
			}
			if status, _, got := call(t, s, "POST", "/v1/messages", body, edit); status != 200 {
				t.Errorf("got %d %s", status, got)
			}
		})
	}
}

func TestReply(t *testing.T) {
	t.Parallel()
	s := anthropictest.NewServer(t, anthropictest.Config{})
	status, h, got := call(t, s, "POST", "/v1/messages",
		`{"model":"claude-x","max_tokens":64,"system":"be nice","messages":[{"role":"user","content":"hi there"}]}`, nil)
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil || status != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %v", status, got, err)
	}
	want := `{"content":[{"text":"echo: hi there","type":"text"}],"id":"msg_fake00000000000000000001",` +
		`"model":"claude-x","role":"assistant","stop_reason":"end_turn","stop_sequence":null,"type":"message",` +
		`"usage":{"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"input_tokens":4,"output_tokens":3}}`
	if b, _ := json.Marshal(m); string(b) != want {
		t.Errorf("reply\n got %s\nwant %s", b, want)
	}
	if r := s.Requests(); len(r) != 1 || r[0].Body.System.Value != "be nice" || *r[0].Body.MaxTokens != 64 {
		t.Errorf("recorded %+v", r)
	}
}

func TestStreamFraming(t *testing.T) {
	t.Parallel()
	s := anthropictest.NewServer(t, anthropictest.Config{Reply: "a b", StopReason: "refusal"})
	status, h, got := call(t, s, "POST", "/v1/messages",
		`{"model":"claude-x","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %v", status, h)
	}
	want := strings.Join([]string{
		`event: message_start` + "\n" + `data: {"message":{"content":[],"id":"msg_fake00000000000000000001","model":"claude-x",` +
			`"role":"assistant","stop_reason":null,"stop_sequence":null,"type":"message","usage":` +
			`{"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"input_tokens":1,"output_tokens":1}},"type":"message_start"}`,
		`event: content_block_start` + "\n" + `data: {"content_block":{"text":"","type":"text"},"index":0,"type":"content_block_start"}`,
		`event: ping` + "\n" + `data: {"type":"ping"}`,
		`event: content_block_delta` + "\n" + `data: {"delta":{"text":"a ","type":"text_delta"},"index":0,"type":"content_block_delta"}`,
		`event: content_block_delta` + "\n" + `data: {"delta":{"text":"b","type":"text_delta"},"index":0,"type":"content_block_delta"}`,
		`event: content_block_stop` + "\n" + `data: {"index":0,"type":"content_block_stop"}`,
		`event: message_delta` + "\n" + `data: {"delta":{"stop_reason":"refusal","stop_sequence":null},"type":"message_delta","usage":{"output_tokens":2}}`,
		`event: message_stop` + "\n" + `data: {"type":"message_stop"}`,
	}, "\n\n") + "\n\n"
	if got != want {
		t.Errorf("stream\n got %s\nwant %s", got, want)
	}
}

func TestStreamErrorEvent(t *testing.T) {
	t.Parallel()
	s := anthropictest.NewServer(t, anthropictest.Config{Reply: "a b c", FailMidStream: anthropictest.FaultError, FailAfter: 1})
	_, _, got := call(t, s, "POST", "/v1/messages",
		`{"model":"claude-x","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	want := "event: error\ndata: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"}," +
		"\"request_id\":\"req_fake00000000000000000001\",\"type\":\"error\"}\n\n"
	if !strings.HasSuffix(got, want) || strings.Count(got, "event: content_block_delta") != 1 || strings.Contains(got, "message_stop") {
		t.Errorf("stream %s", got)
	}
}

func TestFailTimes(t *testing.T) {
	t.Parallel()
	s := anthropictest.NewServer(t, anthropictest.Config{Fail: anthropictest.RateLimited("2"), FailTimes: 1})
	status, h, _ := call(t, s, "POST", "/v1/messages", valid, nil)
	if status != 429 || h.Get("Retry-After") != "2" {
		t.Errorf("first call %d %v", status, h)
	}
	if status, _, got := call(t, s, "POST", "/v1/messages", valid, nil); status != 200 {
		t.Errorf("second call %d %s", status, got)
	}
}

func TestRequestsIsACopy(t *testing.T) {
	t.Parallel()
	s := anthropictest.NewServer(t, anthropictest.Config{})
	call(t, s, "POST", "/v1/messages", valid, nil)
	r := s.Requests()
	r[0].Raw[0] = 'X'
	r[0].Header.Set("X-Api-Key", "changed")
	again := s.Requests()
	if !bytes.Equal(again[0].Raw, []byte(valid)) || again[0].Header.Get("X-Api-Key") != key {
		t.Error("Requests returned shared state")
	}
}
