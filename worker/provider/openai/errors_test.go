package openai_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// call runs Complete or Stream.
type call func(p *openai.Provider, ctx context.Context, req *schema.Request) (*schema.Response, error)

var modes = map[string]call{
	"complete": func(p *openai.Provider, ctx context.Context, req *schema.Request) (*schema.Response, error) {
		return p.Complete(ctx, req)
	},
	"stream": func(p *openai.Provider, ctx context.Context, req *schema.Request) (*schema.Response, error) {
		return p.Stream(ctx, req, func(schema.ChunkChoice) error { return nil })
	},
}

func failWith(f openaitest.Failure) openaitest.Config { return openaitest.Config{Fail: &f} }

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	vllmContext := openaitest.Failure{Status: http.StatusBadRequest, Error: openaitest.NewAPIError(
		"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.", "BadRequestError", "", "")}
	cases := []struct {
		name       string
		cfg        openaitest.Config
		key        string
		prompt     string
		code       string
		status     int           // ProviderStatus
		retryAfter time.Duration // wanted hint; 0 = none
		inMessage  string
	}{
		{name: "wrong key", cfg: openaitest.Config{Key: testKey}, key: "sk-wrong-key-000000000",
			code: schema.CodeAuthentication, status: 401, inMessage: "invalid_api_key"},
		{name: "missing key", cfg: openaitest.Config{Key: testKey},
			code: schema.CodeAuthentication, status: 401},
		{name: "unknown model", cfg: openaitest.Config{Model: "gpt-other"},
			code: schema.CodeNotFound, status: 404, inMessage: "model_not_found"},
		{name: "bad request", cfg: failWith(openaitest.BadRequest("Invalid 'messages[0].content': string too long.", "messages[0].content")),
			code: schema.CodeBadRequest, status: 400, inMessage: "string too long"},
		{name: "context window", cfg: openaitest.Config{ContextWindow: 3}, prompt: "one two three four",
			code: schema.CodeContextWindowExceeded, status: 400, inMessage: "maximum context length"},
		{name: "context window by message only", cfg: failWith(vllmContext),
			code: schema.CodeContextWindowExceeded, status: 400},
		{name: "content filter", cfg: failWith(openaitest.ContentFilter()),
			code: schema.CodeContentPolicy, status: 400, inMessage: "content_filter"},
		{name: "rate limited with headers", cfg: failWith(openaitest.RateLimited(1500 * time.Millisecond)),
			code: schema.CodeRateLimited, status: 429, retryAfter: 1500 * time.Millisecond},
		{name: "rate limited with hint in message", cfg: failWith(openaitest.RateLimited(0)),
			code: schema.CodeRateLimited, status: 429, retryAfter: 2 * time.Second},
		{name: "insufficient quota", cfg: failWith(openaitest.InsufficientQuota()),
			code: schema.CodeAuthentication, status: 429, inMessage: "quota exhausted"},
		{name: "server error", cfg: failWith(openaitest.ServerError(500)),
			code: schema.CodeProviderError, status: 500},
		{name: "overloaded", cfg: failWith(openaitest.ServerError(503)),
			code: schema.CodeProviderError, status: 503, inMessage: "overloaded"},
	}
	for _, c := range cases {
		for mode, run := range modes {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				p, _ := setup(t, c.cfg, func(o *provider.Options) { o.APIKey = c.key })
				prompt := c.prompt
				if prompt == "" {
					prompt = "hi"
				}
				resp, err := run(p, context.Background(), userRequest(prompt))
				e := wantError(t, err, c.code)
				if resp != nil {
					t.Errorf("response with an error: %+v", resp)
				}
				if e.ProviderStatus != c.status {
					t.Errorf("provider status = %d, want %d", e.ProviderStatus, c.status)
				}
				if e.RetryAfter() != c.retryAfter {
					t.Errorf("retry after = %v, want %v", e.RetryAfter(), c.retryAfter)
				}
				if !strings.HasPrefix(e.Message, "openai: ") || !strings.Contains(e.Message, c.inMessage) {
					t.Errorf("message %q: want the provider named and %q", e.Message, c.inMessage)
				}
				if want := c.code == schema.CodeRateLimited || c.code == schema.CodeProviderError; e.Retryable() != want {
					t.Errorf("retryable = %v, want %v", e.Retryable(), want)
				}
			})
		}
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	hang := &openaitest.StreamFault{AfterChunks: 1, Hang: true}
	cases := []struct {
		name string
		cfg  openaitest.Config
		mode string
		opts func(*provider.Options)
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{name: "complete, options timeout", mode: "complete", cfg: openaitest.Config{Delay: time.Hour},
			opts: func(o *provider.Options) { o.Timeout = 50 * time.Millisecond }},
		{name: "complete, caller deadline", mode: "complete", cfg: openaitest.Config{Delay: time.Hour},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			}},
		{name: "stream, stream timeout", mode: "stream", cfg: openaitest.Config{StreamFault: hang},
			opts: func(o *provider.Options) { o.Timeout = time.Hour; o.StreamTimeout = 50 * time.Millisecond }},
		{name: "stream, caller deadline", mode: "stream", cfg: openaitest.Config{StreamFault: hang},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, srv := setup(t, c.cfg, c.opts)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if c.ctx != nil {
				ctx, cancel = c.ctx()
			}
			defer cancel()
			_, err := modes[c.mode](p, ctx, userRequest("x"))
			wantError(t, err, schema.CodeTimeout)
			waitFor(t, srv.Disconnected(), "the fake to see the call abandoned")
		})
	}
}

func TestStreamCancelled(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{StreamFault: &openaitest.StreamFault{AfterChunks: 1, Hang: true}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := p.Stream(ctx, userRequest("x"), func(schema.ChunkChoice) error { cancel(); return nil })
	wantError(t, err, schema.CodeCancelled)
	waitFor(t, srv.Disconnected(), "the fake to see the call abandoned")
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for mode, run := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p, err := openai.New(provider.Options{Model: testModel, APIBase: "http://" + addr + "/v1", HTTP: newClient(t)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = run(p, context.Background(), userRequest("x"))
			e := wantError(t, err, schema.CodeConnection)
			if !strings.HasPrefix(e.Message, "openai: ") || !e.Retryable() {
				t.Errorf("error = %+v", e)
			}
		})
	}
}
