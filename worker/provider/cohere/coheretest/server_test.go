package coheretest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/worker/provider/cohere/coheretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "co-test-key-0123456789"

func post(t *testing.T, srv *coheretest.Server, method, path, ct, auth, body string) (int, []byte) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
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
	return resp.StatusCode, b
}

func TestFakeRejectsWhatCohereRejects(t *testing.T) {
	t.Parallel()
	const ok = `{"model":"command-r","messages":[{"role":"user","content":"hi"}]}`
	bearer := "Bearer " + key
	withMsgs := func(extra string) string {
		return `{"model":"command-r","messages":[{"role":"user","content":"hi"}],` + extra + `}`
	}
	cases := []struct {
		name, method, path, ct, auth, body string
		status                             int
		inMessage                          string
	}{
		{"wrong path", "POST", "/v1/chat/completions", "application/json", bearer, ok, 404, "Not Found"},
		{"v1 chat", "POST", "/v1/chat", "application/json", bearer, ok, 404, "Not Found"},
		{"wrong method", "GET", "/v2/chat", "", bearer, "", 404, "Not Found"},
		{"no key", "POST", "/v2/chat", "application/json", "", ok, 401, "no api key supplied"},
		{"wrong key", "POST", "/v2/chat", "application/json", "Bearer other-key-0000", ok, 401, "invalid api token"},
		{"key without Bearer", "POST", "/v2/chat", "application/json", key, ok, 401, "invalid api token"},
		{"not JSON", "POST", "/v2/chat", "text/plain", bearer, ok, 400, "Content-Type"},
		{"no model", "POST", "/v2/chat", "application/json", bearer, `{"messages":[{"role":"user","content":"hi"}]}`, 400, "model"},
		{"no messages", "POST", "/v2/chat", "application/json", bearer, `{"model":"command-r","messages":[]}`, 400, "messages"},
		{"developer role", "POST", "/v2/chat", "application/json", bearer,
			`{"model":"command-r","messages":[{"role":"developer","content":"x"}]}`, 400, "role"},
		{"OpenAI's top_p", "POST", "/v2/chat", "application/json", bearer, withMsgs(`"top_p":0.5`), 400, "top_p"},
		{"OpenAI's stop", "POST", "/v2/chat", "application/json", bearer, withMsgs(`"stop":["x"]`), 400, "stop"},
		{"p of 1", "POST", "/v2/chat", "application/json", bearer, withMsgs(`"p":1`), 400, "p must be"},
		{"negative temperature", "POST", "/v2/chat", "application/json", bearer, withMsgs(`"temperature":-1`), 400, "temperature"},
		{"six stop sequences", "POST", "/v2/chat", "application/json", bearer,
			withMsgs(`"stop_sequences":["a","b","c","d","e","f"]`), 400, "at most 5"},
		{"max_tokens zero", "POST", "/v2/chat", "application/json", bearer, withMsgs(`"max_tokens":0`), 400, "max_tokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := coheretest.NewServer(t, coheretest.Config{Key: key})
			status, b := post(t, srv, c.method, c.path, c.ct, c.auth, c.body)
			if status != c.status {
				t.Fatalf("status = %d, want %d: %s", status, c.status, b)
			}
			var e struct {
				ID      string `json:"id"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(b, &e); err != nil || e.ID == "" || !strings.Contains(e.Message, c.inMessage) {
				t.Errorf("body %s: want an id and %q (%v)", b, c.inMessage, err)
			}
		})
	}
}

func TestFakeReplyShape(t *testing.T) {
	t.Parallel()
	srv := coheretest.NewServer(t, coheretest.Config{})
	status, b := post(t, srv, "POST", "/v2/chat", "application/json", "Bearer k",
		`{"model":"command-r","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hello world"}]}]}`)
	var r struct {
		ID           string `json:"id"`
		FinishReason string `json:"finish_reason"`
		Message      struct {
			Role    string `json:"role"`
			Content []struct {
				Type, Text string
			} `json:"content"`
		} `json:"message"`
		Usage struct {
			BilledUnits struct {
				In  int `json:"input_tokens"`
				Out int `json:"output_tokens"`
			} `json:"billed_units"`
			Tokens struct {
				In  int `json:"input_tokens"`
				Out int `json:"output_tokens"`
			} `json:"tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &r); status != 200 || err != nil {
		t.Fatalf("status %d: %s (%v)", status, b, err)
	}
	if r.ID == "" || r.FinishReason != "COMPLETE" || r.Message.Role != "assistant" || len(r.Message.Content) != 1 ||
		r.Message.Content[0].Type != "text" || r.Message.Content[0].Text != "echo: hello world" ||
		r.Usage.BilledUnits.In != 4 || r.Usage.BilledUnits.Out != 3 || r.Usage.Tokens.In != 4+coheretest.TemplateTokens {
		t.Errorf("reply %s", b)
	}
}

func TestFakeStreamEvents(t *testing.T) {
	t.Parallel()
	srv := coheretest.NewServer(t, coheretest.Config{Reply: "a b"})
	status, b := post(t, srv, "POST", "/v2/chat", "application/json", "Bearer k",
		`{"model":"command-r","messages":[{"role":"user","content":"x"}],"stream":true}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, b)
	}
	var types []string
	for _, block := range strings.Split(strings.TrimSpace(string(b)), "\n\n") {
		ev, data, _ := strings.Cut(block, "\n")
		var d struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &d); err != nil || "event: "+d.Type != ev {
			t.Fatalf("block %q (%v)", block, err)
		}
		types = append(types, d.Type)
	}
	want := "message-start content-start content-delta content-delta content-end message-end"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("events %q, want %q", got, want)
	}
}
