package gemini_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	withRetryAfter := geminitest.RateLimited("13s")
	withRetryAfter.RetryAfter = 7
	cases := []struct {
		name     string
		cfg      geminitest.Config
		code     string
		status   int
		retry    time.Duration
		contains string
	}{
		{"invalid key", geminitest.Config{Fail: geminitest.InvalidKey()}, schema.CodeAuthentication, 400, 0, "API key not valid"},
		{"missing key", geminitest.Config{Fail: geminitest.MissingKey()}, schema.CodeAuthentication, 403, 0, "PERMISSION_DENIED"},
		{"permission denied", geminitest.Config{Fail: geminitest.PermissionDenied()}, schema.CodeAuthentication, 403, 0, "permission"},
		{"bad request", geminitest.Config{Fail: geminitest.InvalidArgument("Request contains an invalid argument.")}, schema.CodeBadRequest, 400, 0, "INVALID_ARGUMENT"},
		{"failed precondition", geminitest.Config{Fail: geminitest.FailedPrecondition()}, schema.CodeBadRequest, 400, 0, "FAILED_PRECONDITION"},
		{"context window", geminitest.Config{ContextWindow: 3}, schema.CodeContextWindowExceeded, 400, 0, "exceeds the maximum number of tokens"},
		{"unknown model", geminitest.Config{Models: []string{"gemini-1.5-pro"}}, schema.CodeNotFound, 404, 0, "not found"},
		{"rate limited, retryDelay", geminitest.Config{Fail: geminitest.RateLimited("13s")}, schema.CodeRateLimited, 429, 13 * time.Second, "RESOURCE_EXHAUSTED"},
		{"rate limited, fractional retryDelay", geminitest.Config{Fail: geminitest.RateLimited("0.250s")}, schema.CodeRateLimited, 429, 250 * time.Millisecond, "quota"},
		{"rate limited, Retry-After wins", geminitest.Config{Fail: withRetryAfter}, schema.CodeRateLimited, 429, 7 * time.Second, "quota"},
		{"rate limited, no hint", geminitest.Config{Fail: geminitest.RateLimited("")}, schema.CodeRateLimited, 429, 0, "quota"},
		{"internal", geminitest.Config{Fail: geminitest.Internal()}, schema.CodeProviderError, 500, 0, "INTERNAL"},
		{"unavailable", geminitest.Config{Fail: geminitest.Unavailable()}, schema.CodeProviderError, 503, 0, "overloaded"},
		{"deadline exceeded", geminitest.Config{Fail: geminitest.DeadlineExceeded()}, schema.CodeTimeout, 504, 0, "DEADLINE_EXCEEDED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := geminitest.NewServer(t, tc.cfg)
			p := newProvider(t, srv)
			check := func(call string, err error) {
				t.Helper()
				e := wantCode(t, err, tc.code)
				if e.ProviderStatus != tc.status {
					t.Errorf("%s: provider status = %d, want %d", call, e.ProviderStatus, tc.status)
				}
				if e.RetryAfter() != tc.retry {
					t.Errorf("%s: retry after = %v, want %v", call, e.RetryAfter(), tc.retry)
				}
				if !strings.HasPrefix(e.Message, "gemini: ") || !strings.Contains(e.Message, tc.contains) {
					t.Errorf("%s: message %q should start with the provider and contain %q", call, e.Message, tc.contains)
				}
			}
			_, err := p.Complete(context.Background(), userRequest("one two three four"))
			check("Complete", err)
			deltas, _, err := collect(t, p, userRequest("one two three four"))
			check("Stream", err)
			if len(deltas) > 0 {
				t.Errorf("Stream emitted %q before an HTTP error", deltas)
			}
		})
	}
}

func TestWrongKeyIsAuthentication(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Key: "the-right-key"})
	p := newProvider(t, srv, func(o *provider.Options) { o.APIKey = "a-wrong-key" })
	_, err := p.Complete(context.Background(), userRequest("hi"))
	wantCode(t, err, schema.CodeAuthentication)
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	slow := geminitest.Config{Delay: time.Minute}
	t.Run("context deadline", func(t *testing.T) {
		t.Parallel()
		srv := geminitest.NewServer(t, slow)
		p := newProvider(t, srv)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := p.Complete(ctx, userRequest("hi"))
		if e := wantCode(t, err, schema.CodeTimeout); !strings.HasPrefix(e.Message, "gemini: ") {
			t.Errorf("message %q does not name the provider", e.Message)
		}
	})
	t.Run("option Timeout", func(t *testing.T) {
		t.Parallel()
		srv := geminitest.NewServer(t, slow)
		p := newProvider(t, srv, func(o *provider.Options) { o.Timeout = 50 * time.Millisecond })
		_, err := p.Complete(context.Background(), userRequest("hi"))
		wantCode(t, err, schema.CodeTimeout)
	})
	t.Run("option StreamTimeout while streaming", func(t *testing.T) {
		t.Parallel()
		// The headers arrive at once, the first chunk never in time.
		srv := geminitest.NewServer(t, geminitest.Config{Reply: "a b", Delay: time.Minute})
		p := newProvider(t, srv, func(o *provider.Options) { o.StreamTimeout = 50 * time.Millisecond })
		_, _, err := collect(t, p, userRequest("hi"))
		wantCode(t, err, schema.CodeTimeout)
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		srv := geminitest.NewServer(t, slow)
		p := newProvider(t, srv)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := p.Complete(ctx, userRequest("hi"))
			done <- err
		}()
		cancel()
		wantCode(t, <-done, schema.CodeCancelled)
	})
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := geminitest.Start(geminitest.Config{})
	srv.Close()
	p := newProvider(t, srv)
	_, err := p.Complete(context.Background(), userRequest("hi"))
	if e := wantCode(t, err, schema.CodeConnection); !strings.HasPrefix(e.Message, "gemini: ") {
		t.Errorf("message %q does not name the provider", e.Message)
	}
	_, _, err = collect(t, p, userRequest("hi"))
	wantCode(t, err, schema.CodeConnection)
}

func TestNonJSONErrorBody(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	// An api_base with a path the API does not serve: Google's front end
	// answers with an HTML 404 page.
	p := newProvider(t, srv, func(o *provider.Options) { o.APIBase = srv.URL() + "/proxy" })
	_, err := p.Complete(context.Background(), userRequest("hi"))
	e := wantCode(t, err, schema.CodeNotFound)
	if len(e.Message) > 300 || strings.Contains(e.Message, "\n") {
		t.Errorf("message not cut to one short line: %q", e.Message)
	}
}

// rawServer answers every call with status and body.
func rawServer(t *testing.T, status int, contentType, body string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

func rawProvider(t *testing.T, base string) *gemini.Provider {
	t.Helper()
	p, err := gemini.New(provider.Options{Model: testModel, APIBase: base, APIKey: "k", HTTP: client(t)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMalformedReplies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		status   int
		ct, body string
		stream   bool
		code     string
	}{
		{"non-JSON 200", 200, "application/json", "<html>oops</html>", false, schema.CodeProviderError},
		{"no candidates", 200, "application/json", `{"usageMetadata":{"promptTokenCount":1}}`, false, schema.CodeProviderError},
		{"truncated JSON", 200, "application/json", `{"candidates":[{"content":`, false, schema.CodeConnection},
		{"error array form", 429, "application/json", `[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]`, false, schema.CodeRateLimited},
		{"empty error body", 503, "text/plain", "", false, schema.CodeProviderError},
		{"bad stream event", 200, "text/event-stream", "data: {not json\r\n\r\n", true, schema.CodeProviderError},
		{"empty stream", 200, "text/event-stream", "", true, schema.CodeConnection},
		{"candidate index beyond n", 200, "application/json",
			`{"candidates":[{"content":{"role":"model","parts":[{"text":"x"}]},"finishReason":"STOP","index":3}]}`, false, schema.CodeProviderError},
		{"streamed candidate index beyond n", 200, "text/event-stream",
			"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"index\":-1}]}\r\n\r\n", true, schema.CodeProviderError},
		{"streamed call without finish", 200, "text/event-stream",
			"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]}}]}\r\n\r\n", true, schema.CodeConnection},
		{"stream error before any chunk", 200, "text/event-stream",
			"data: {\"error\":{\"code\":504,\"message\":\"Deadline expired\",\"status\":\"DEADLINE_EXCEEDED\"}}\r\n\r\n", true, schema.CodeTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := rawProvider(t, rawServer(t, tc.status, tc.ct, tc.body))
			var err error
			if tc.stream {
				_, _, err = collect(t, p, userRequest("hi"))
			} else {
				_, err = p.Complete(context.Background(), userRequest("hi"))
			}
			wantCode(t, err, tc.code)
		})
	}
}

func TestResponseWithoutIDGetsOne(t *testing.T) {
	t.Parallel()
	body := `{"candidates":[{"content":{"role":"model","parts":[{"text":"thinking…","thought":true},{"text":"hi"}]},"finishReason":"STOP"}],` +
		`"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1,"thoughtsTokenCount":5,"totalTokenCount":8}}`
	p := rawProvider(t, rawServer(t, 200, "application/json", body))
	resp, err := p.Complete(context.Background(), userRequest("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Model != testModel {
		t.Errorf("id %q model %q", resp.ID, resp.Model)
	}
	if resp.Text() != "hi" {
		t.Errorf("text %q: thought parts must be left out", resp.Text())
	}
	if want := (schema.Usage{PromptTokens: 2, CompletionTokens: 6, TotalTokens: 8}); resp.Usage != want {
		t.Errorf("usage = %+v, want %+v", resp.Usage, want)
	}
}

func TestHugeNDoesNotSizeTheReply(t *testing.T) {
	t.Parallel()
	body := `{"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]},"finishReason":"STOP","index":0}]}`
	p := rawProvider(t, rawServer(t, 200, "application/json", body))
	req := userRequest("hi")
	req.N = ptr(1 << 40) // not validated: the adapter must still bound what it allocates
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 || resp.Text() != "hi" {
		t.Errorf("response = %+v", resp)
	}
}
