package openaitest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "sk-fake-key-0123456789"

// post sends body to the fake and returns the status and decoded body.
func post(t *testing.T, srv *openaitest.Server, method, path, contentType, auth, body string) (int, http.Header, []byte) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	req, err := http.NewRequest(method, strings.TrimSuffix(srv.URL(), "/v1")+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func TestFakeRejectsWhatOpenAIRejects(t *testing.T) {
	t.Parallel()
	const ok = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	cases := []struct {
		name                   string
		method, path, ct, auth string
		body                   string
		status                 int
		code, param, inMessage string
	}{
		{"wrong path", "POST", "/chat/completions", "application/json", "Bearer " + key, ok, 404, "unknown_url", "", "Unknown request URL"},
		{"wrong method", "GET", "/v1/chat/completions", "", "Bearer " + key, "", 404, "unknown_url", "", "GET"},
		{"no key", "POST", "/v1/chat/completions", "application/json", "", ok, 401, "", "", "API key"},
		{"wrong key", "POST", "/v1/chat/completions", "application/json", "Bearer sk-other-key-000000", ok, 401, "invalid_api_key", "", "Incorrect API key"},
		{"key without Bearer", "POST", "/v1/chat/completions", "application/json", key, ok, 401, "invalid_api_key", "", ""},
		{"not json", "POST", "/v1/chat/completions", "text/plain", "Bearer " + key, ok, 400, "", "", "parse the JSON body"},
		{"unknown argument", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[{"role":"user","content":"hi"}],"best_of":2}`, 400, "", "", "Unrecognized request argument supplied: best_of"},
		{"no model", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"messages":[{"role":"user","content":"hi"}]}`, 400, "", "", "model"},
		{"no messages", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m"}`, 400, "missing_required_parameter", "messages", ""},
		{"empty messages", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[]}`, 400, "", "messages", "too short"},
		{"bad role", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[{"role":"robot","content":"x"}]}`, 400, "invalid_value", "messages[0].role", "'robot'"},
		{"no content", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[{"role":"user"}]}`, 400, "missing_required_parameter", "messages[0].content", ""},
		{"temperature too high", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":2.5}`, 400, "invalid_value", "temperature", ""},
		{"max_tokens zero", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}`, 400, "integer_below_min_value", "max_tokens", ""},
		{"max_tokens decimal", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5}`, 400, "invalid_type", "max_tokens", ""},
		{"five stops", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}`, 400, "array_above_max_length", "stop", ""},
		{"stream_options without stream", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}`, 400, "", "stream_options", "only allowed when 'stream' is enabled"},
		{"stream_options with stream false", "POST", "/v1/chat/completions", "application/json", "Bearer " + key,
			`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":false,"stream_options":{"include_usage":true}}`, 400, "", "stream_options", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t, openaitest.Config{Key: key})
			status, h, b := post(t, srv, c.method, c.path, c.ct, c.auth, c.body)
			if status != c.status {
				t.Fatalf("status = %d, want %d: %s", status, c.status, b)
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var e errorBody
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
				t.Fatalf("body %s is not an OpenAI error: %v", b, err)
			}
			if got := deref(e.Error.Code); got != c.code {
				t.Errorf("code = %q, want %q", got, c.code)
			}
			if c.param != "" && deref(e.Error.Param) != c.param {
				t.Errorf("param = %q, want %q", deref(e.Error.Param), c.param)
			}
			if !strings.Contains(e.Error.Message, c.inMessage) {
				t.Errorf("message %q lacks %q", e.Error.Message, c.inMessage)
			}
			if strings.Contains(string(b), "sk-other-key-000000") {
				t.Errorf("the fake echoed a whole key: %s", b)
			}
			if got := len(srv.Requests()); got != 1 {
				t.Errorf("recorded %d requests", got)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestFakeCompletionShape(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Config{})
	status, _, b := post(t, srv, "POST", "/v1/chat/completions", "application/json", "",
		`{"model":"m","messages":[{"role":"system","content":"be nice"},{"role":"user","content":[{"type":"text","text":"hello "},{"type":"text","text":"world"}]}]}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, b)
	}
	var c struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		Model   string `json:"model"`
		Choices []struct {
			Index   int `json:"index"`
			Message struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
			Total      int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Object != "chat.completion" || c.Created == 0 || c.Model != "m" || !strings.HasPrefix(c.ID, "chatcmpl-") ||
		len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" || c.Choices[0].Message.Content != "echo: hello world" ||
		c.Choices[0].FinishReason != "stop" || c.Usage.Prompt != 4 || c.Usage.Completion != 3 || c.Usage.Total != 7 {
		t.Errorf("completion = %s", b)
	}
}

func TestFakeStreamFraming(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Config{Reply: "a b"})
	status, h, b := post(t, srv, "POST", "/v1/chat/completions", "application/json", "",
		`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}`)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", status, h.Get("Content-Type"))
	}
	var events []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not a data field", line)
		}
		events = append(events, data)
	}
	// role chunk, "a", " b", finish chunk, usage chunk, [DONE]
	if len(events) != 6 || events[5] != "[DONE]" {
		t.Fatalf("events = %q", events)
	}
	type chunk struct {
		Object  string `json:"object"`
		Choices []struct {
			Delta        map[string]any `json:"delta"`
			FinishReason *string        `json:"finish_reason"`
		} `json:"choices"`
		Usage *struct {
			Total int `json:"total_tokens"`
		} `json:"usage"`
	}
	var text strings.Builder
	for i, ev := range events[:5] {
		var raw map[string]json.RawMessage
		var c chunk
		if err := json.Unmarshal([]byte(ev), &raw); err != nil || json.Unmarshal([]byte(ev), &c) != nil {
			t.Fatalf("event %d %q: %v", i, ev, err)
		}
		if c.Object != "chat.completion.chunk" {
			t.Errorf("event %d object %q", i, c.Object)
		}
		if _, ok := raw["usage"]; !ok {
			t.Errorf("event %d has no usage member (include_usage sends null)", i)
		}
		if i < 4 {
			if c.Usage != nil || len(c.Choices) != 1 {
				t.Errorf("event %d: %s", i, ev)
			}
			if s, ok := c.Choices[0].Delta["content"].(string); ok {
				text.WriteString(s)
			}
		}
	}
	var last chunk
	_ = json.Unmarshal([]byte(events[3]), &last)
	if last.Choices[0].FinishReason == nil || *last.Choices[0].FinishReason != "stop" {
		t.Errorf("finish chunk = %s", events[3])
	}
	var usage chunk
	_ = json.Unmarshal([]byte(events[4]), &usage)
	if len(usage.Choices) != 0 || usage.Usage == nil || usage.Usage.Total != 3 {
		t.Errorf("usage chunk = %s", events[4])
	}
	if text.String() != "a b" {
		t.Errorf("content = %q", text.String())
	}
}

func TestFakeStreamWithoutUsageHasNoUsageMember(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Config{Reply: "a"})
	_, _, b := post(t, srv, "POST", "/v1/chat/completions", "application/json", "",
		`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}`)
	if strings.Contains(string(b), `"usage"`) || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Errorf("stream = %s", b)
	}
}

// azurePost sends body to an Azure fake with the given credentials.
func azurePost(t *testing.T, srv *openaitest.Server, method, path string, h map[string]string, body string) (int, []byte) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestAzureFakeRejectsWhatAzureRejects(t *testing.T) {
	t.Parallel()
	const (
		ok    = `{"messages":[{"role":"user","content":"hi"}]}`
		dep   = "gpt4o"
		token = "entra-token-0123"
	)
	path := openaitest.AzurePath(dep) + "?api-version=2024-10-21"
	withKey := map[string]string{"Api-Key": key}
	cases := []struct {
		name      string
		azure     openaitest.Azure
		method    string
		path      string
		h         map[string]string
		status    int
		code      string
		inMessage string
	}{
		{"no api-version", openaitest.Azure{}, "POST", openaitest.AzurePath(dep), withKey, 404, "404", "Resource not found"},
		{"unknown api-version", openaitest.Azure{}, "POST", openaitest.AzurePath(dep) + "?api-version=2099-01-01", withKey, 404, "404", "Resource not found"},
		{"OpenAI's path", openaitest.Azure{}, "POST", "/v1/chat/completions?api-version=2024-10-21", withKey, 404, "404", "Resource not found"},
		{"wrong method", openaitest.Azure{}, "GET", path, withKey, 404, "404", "Resource not found"},
		{"no credential", openaitest.Azure{}, "POST", path, nil, 401, "401", "missing subscription key"},
		{"wrong key", openaitest.Azure{}, "POST", path, map[string]string{"Api-Key": "other-key-000"}, 401, "401", "invalid subscription key"},
		{"key sent as Bearer", openaitest.Azure{}, "POST", path, map[string]string{"Authorization": "Bearer " + key}, 401, "401", "Access token"},
		{"token sent as api-key", openaitest.Azure{ADToken: token}, "POST", path, map[string]string{"Api-Key": token}, 401, "401", "invalid subscription key"},
		{"wrong token", openaitest.Azure{ADToken: token}, "POST", path, map[string]string{"Authorization": "Bearer nope"}, 401, "401", "Access token"},
		{"unknown deployment", openaitest.Azure{Deployment: "other"}, "POST", path, withKey, 404, "DeploymentNotFound", "does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fakeKey := key
			if c.azure.ADToken != "" {
				fakeKey = ""
			}
			az := c.azure
			srv := openaitest.NewServer(t, openaitest.Config{Key: fakeKey, Azure: &az})
			status, b := azurePost(t, srv, c.method, c.path, c.h, ok)
			if status != c.status {
				t.Fatalf("status = %d, want %d: %s", status, c.status, b)
			}
			var e struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.inMessage) {
				t.Errorf("body %s: want code %q and %q (%v)", b, c.code, c.inMessage, err)
			}
		})
	}
}

func TestAzureFakeAnswersLikeAzure(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Config{Reply: "a b", Azure: &openaitest.Azure{ADToken: "tok"}})
	path := openaitest.AzurePath("dep") + "?api-version=2024-10-21"
	auth := map[string]string{"Authorization": "Bearer tok"}
	status, b := azurePost(t, srv, "POST", path, auth, `{"messages":[{"role":"user","content":"x"}]}`)
	var c struct {
		Model   string `json:"model"`
		Filters []any  `json:"prompt_filter_results"`
		Choices []struct {
			Filters map[string]any `json:"content_filter_results"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &c); status != 200 || err != nil || c.Model != "gpt-4o-2024-08-06" || len(c.Filters) != 1 ||
		len(c.Choices) != 1 || c.Choices[0].Filters == nil {
		t.Errorf("status %d, completion %s (%v)", status, b, err)
	}
	status, b = azurePost(t, srv, "POST", path, auth, `{"messages":[{"role":"user","content":"x"}],"stream":true}`)
	first, _, _ := strings.Cut(string(b), "\n\n")
	if status != 200 || !strings.Contains(first, `"prompt_filter_results"`) || !strings.Contains(first, `"choices":[]`) ||
		!strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Errorf("status %d, stream %s", status, b)
	}
	// The body's model is optional on Azure, not on OpenAI.
	if reqs := srv.Requests(); len(reqs) != 2 || reqs[0].Body["model"] != nil {
		t.Errorf("requests %+v", reqs)
	}
}
