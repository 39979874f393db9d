package anthropic_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/anthropic"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
)

// upstream starts a hand-written server for answers the strict fake never
// gives, and returns an adapter pointed at it.
func upstream(t *testing.T, key string, h http.HandlerFunc) *anthropic.Provider {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := provider.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	p, err := anthropic.New(provider.Options{Model: testModel, APIKey: key, APIBase: srv.URL, HTTP: c})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sseEvents(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for i := 0; i+1 < len(events); i += 2 {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", events[i], events[i+1])
	}
}

const messageStart = `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",` +
	`"model":"claude-x","content":[],"stop_reason":null,"usage":{"input_tokens":10,"output_tokens":1}}}`

func TestUnusualUpstreams(t *testing.T) {
	t.Parallel()
	req := &schema.Request{Messages: msgs("user", "hi")}
	emit := func(schema.ChunkChoice) error { return nil }

	t.Run("html error page", func(t *testing.T) {
		t.Parallel()
		p := upstream(t, testKey, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html>\n<h1>502 Bad Gateway</h1>\n</html>")
		})
		_, err := p.Complete(context.Background(), req)
		e := wantCode(t, err, schema.CodeProviderError)
		if !strings.Contains(e.Message, "<h1>502 Bad Gateway</h1>") || e.RetryAfter() != 3*time.Second {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("malformed reply", func(t *testing.T) {
		t.Parallel()
		p := upstream(t, testKey, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"id": 12}`)
		})
		_, err := p.Complete(context.Background(), req)
		wantCode(t, err, schema.CodeProviderError)
	})
	t.Run("stream ends cleanly without message_stop", func(t *testing.T) {
		t.Parallel()
		p := upstream(t, testKey, func(w http.ResponseWriter, r *http.Request) {
			sseEvents(w, "message_start", messageStart,
				"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`)
		})
		_, err := p.Stream(context.Background(), req, emit)
		wantCode(t, err, schema.CodeConnection)
	})
	t.Run("stream cut inside an event", func(t *testing.T) {
		t.Parallel()
		p := upstream(t, testKey, func(w http.ResponseWriter, r *http.Request) {
			sseEvents(w, "message_start", messageStart)
			fmt.Fprint(w, "event: content_block_delta\ndata: {\"type\":\"content_bl")
		})
		_, err := p.Stream(context.Background(), req, emit)
		wantCode(t, err, schema.CodeConnection)
	})
	t.Run("stream with other blocks, new events and cumulative usage", func(t *testing.T) {
		t.Parallel()
		p := upstream(t, testKey, func(w http.ResponseWriter, r *http.Request) {
			sseEvents(w,
				"message_start", messageStart,
				"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`,
				"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}`,
				"content_block_stop", `{"type":"content_block_stop","index":0}`,
				"brand_new_event", `{"type":"brand_new_event","x":1}`,
				"ping", `{"type":"ping"}`,
				"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
				"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hel"}}`,
				"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"lo"}}`,
				"content_block_stop", `{"type":"content_block_stop","index":1}`,
				"message_delta", `{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},`+
					`"usage":{"input_tokens":12,"cache_read_input_tokens":30,"output_tokens":9}}`,
				"message_stop", `{"type":"message_stop"}`)
		})
		var got []string
		resp, err := p.Stream(context.Background(), req, func(c schema.ChunkChoice) error { d := c.Delta.Content; got = append(got, d); return nil })
		if err != nil {
			t.Fatal(err)
		}
		want := schema.Usage{PromptTokens: 42, CompletionTokens: 9, TotalTokens: 51}
		if strings.Join(got, "|") != "Hel|lo" || resp.Text() != "Hello" || resp.Usage != want ||
			resp.Choices[0].FinishReason != "length" || resp.ID != "msg_1" || resp.Model != "claude-x" {
			t.Errorf("deltas %q, response %+v", got, resp)
		}
	})
	t.Run("reply with cache usage and non-text blocks", func(t *testing.T) {
		t.Parallel()
		p := upstream(t, testKey, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"id":"","type":"message","role":"assistant","model":"claude-x","content":[`+
				`{"type":"thinking","thinking":"..."},{"type":"text","text":"a"},{"type":"tool_use","id":"t","name":"f","input":{}},`+
				`{"type":"text","text":"b"}],"stop_reason":"tool_use","stop_sequence":null,`+
				`"usage":{"input_tokens":3,"cache_creation_input_tokens":4,"cache_read_input_tokens":5,"output_tokens":6}}`)
		})
		resp, err := p.Complete(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		want := schema.Usage{PromptTokens: 12, CompletionTokens: 6, TotalTokens: 18}
		if resp.Text() != "ab" || resp.Usage != want || resp.Choices[0].FinishReason != "tool_calls" ||
			!strings.HasPrefix(resp.ID, "chatcmpl-") {
			t.Errorf("response %+v", resp)
		}
	})
}

func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const key = "sk-ant-api03-SECRET-do-not-leak-9f8e7d6c"
	req := &schema.Request{Messages: msgs("user", "hello")}
	check := func(t *testing.T, what string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		s := string(b)
		if err, ok := v.(error); ok {
			s += err.Error()
		}
		if strings.Contains(s, key) {
			t.Errorf("%s leaks the key: %s", what, s)
		}
	}
	run := func(t *testing.T, p *anthropic.Provider, ctx context.Context) {
		t.Helper()
		resp, err := p.Complete(ctx, req)
		check(t, "Complete response", resp)
		check(t, "Complete error", err)
		sresp, err := p.Stream(ctx, req, func(c schema.ChunkChoice) error {
			d := c.Delta.Content
			check(t, "delta", d)
			return nil
		})
		check(t, "Stream response", sresp)
		check(t, "Stream error", err)
	}
	fakes := map[string]anthropictest.Config{
		"ok":           {Key: key},
		"wrong key":    {Key: "sk-ant-someone-else"},
		"rate limited": {Key: key, Fail: anthropictest.RateLimited("1")},
		"server error": {Key: key, Fail: anthropictest.Documented(500)},
		"error event":  {Key: key, FailMidStream: anthropictest.FaultError, FailAfter: 1},
		"cut":          {Key: key, FailMidStream: anthropictest.FaultCut, FailAfter: 1},
		"too long":     {Key: key, ContextWindow: 1},
	}
	for name, cfg := range fakes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := anthropictest.NewServer(t, cfg)
			run(t, newProvider(t, fake, func(o *provider.Options) { o.APIKey = key }), context.Background())
		})
	}
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		fake := anthropictest.NewServer(t, anthropictest.Config{Key: key, Delay: time.Minute})
		p := newProvider(t, fake, func(o *provider.Options) { o.APIKey = key; o.Timeout = 30 * time.Millisecond })
		run(t, p, context.Background())
	})
	t.Run("upstream echoes the key", func(t *testing.T) {
		t.Parallel()
		p := upstream(t, key, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"type":"error","error":{"type":"authentication_error","message":"bad key %s"}}`,
				r.Header.Get("X-Api-Key"))
		})
		run(t, p, context.Background())
	})
	t.Run("upstream echoes the key in plain text and in a stream", func(t *testing.T) {
		t.Parallel()
		p := upstream(t, key, func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.Header.Get("Accept"), "event-stream") {
				sseEvents(w, "message_start", messageStart, "error",
					`{"type":"error","error":{"type":"api_error","message":"key `+r.Header.Get("X-Api-Key")+`"}}`)
				return
			}
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "key="+r.Header.Get("X-Api-Key"))
		})
		run(t, p, context.Background())
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + l.Addr().String()
		l.Close()
		c := provider.NewHTTPClient()
		t.Cleanup(c.CloseIdleConnections)
		p, err := anthropic.New(provider.Options{Model: testModel, APIKey: key, APIBase: base, HTTP: c})
		if err != nil {
			t.Fatal(err)
		}
		run(t, p, context.Background())
	})
	t.Run("New", func(t *testing.T) {
		t.Parallel()
		_, err := anthropic.New(provider.Options{Model: "m", APIKey: key, APIBase: "ftp://h/?key=" + key})
		check(t, "New error", err)
		_, err = anthropic.New(provider.Options{Model: "m", APIKey: key, APIBase: "http://user:" + key + "@"})
		check(t, "New error", err)
	})
}
