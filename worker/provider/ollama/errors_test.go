package ollama_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// call runs the request through Complete or Stream.
type call func(p *ollama.Provider, ctx context.Context, req *schema.Request) (*schema.Response, error)

var calls = map[string]call{
	"Complete": func(p *ollama.Provider, ctx context.Context, req *schema.Request) (*schema.Response, error) {
		return p.Complete(ctx, req)
	},
	"Stream": func(p *ollama.Provider, ctx context.Context, req *schema.Request) (*schema.Response, error) {
		return p.Stream(ctx, req, func(schema.ChunkChoice) error { return nil })
	},
}

func hello() *schema.Request { return &schema.Request{Messages: []schema.Message{user("hello")}} }

// wantError checks err is a *schema.Error of the code, naming the provider.
func wantError(t *testing.T, err error, code string) *schema.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	e, ok := err.(*schema.Error)
	if !ok {
		t.Fatalf("error %T %v, want a *schema.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%v), want %s", e.Code, e, code)
	}
	if !strings.HasPrefix(e.Message, "ollama: ") {
		t.Errorf("message %q does not name the provider", e.Message)
	}
	return e
}

func TestHTTPErrorsAreClassified(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		cfg        ollamatest.Config
		model      string // default: the fake's
		key        string
		code       string
		status     int           // ProviderStatus
		retryAfter time.Duration // want
		inMessage  string
	}{
		{name: "missing key", cfg: ollamatest.Config{Key: "proxy-key"},
			code: schema.CodeAuthentication, status: 401, inMessage: "unauthorized"},
		{name: "wrong key", cfg: ollamatest.Config{Key: "proxy-key"}, key: "other",
			code: schema.CodeAuthentication, status: 401},
		{name: "model not pulled", model: "llama3:70b",
			code: schema.CodeNotFound, status: 404, inMessage: `model "llama3:70b" not found, try pulling it first`},
		{name: "bad request", cfg: ollamatest.Config{Fail: &ollamatest.Failure{Status: 400, Message: `"llava" does not support chat`}},
			code: schema.CodeBadRequest, status: 400, inMessage: "does not support chat"},
		{name: "context overflow",
			cfg:  ollamatest.Config{Fail: &ollamatest.Failure{Status: 400, Message: "the input length exceeds the context length"}},
			code: schema.CodeContextWindowExceeded, status: 400},
		{name: "queue full", cfg: ollamatest.Config{Fail: ollamatest.Busy()},
			code: schema.CodeRateLimited, status: 503, retryAfter: ollama.BusyRetryAfter, inMessage: "server busy"},
		{name: "queue full behind a proxy with Retry-After",
			cfg:  ollamatest.Config{Fail: &ollamatest.Failure{Status: 503, Message: ollamatest.BusyMessage, RetryAfter: "7"}},
			code: schema.CodeRateLimited, status: 503, retryAfter: 7 * time.Second},
		{name: "proxy rate limit", cfg: ollamatest.Config{Fail: &ollamatest.Failure{Status: 429, Message: "slow down", RetryAfter: "3"}},
			code: schema.CodeRateLimited, status: 429, retryAfter: 3 * time.Second},
		{name: "runner crashed",
			cfg:  ollamatest.Config{Fail: &ollamatest.Failure{Status: 500, Message: "llama runner process has terminated: exit status 2"}},
			code: schema.CodeProviderError, status: 500, inMessage: "llama runner process has terminated"},
		{name: "proxy error page", cfg: ollamatest.Config{Fail: &ollamatest.Failure{Status: 502, RawBody: "<html>Bad Gateway</html>"}},
			code: schema.CodeProviderError, status: 502, inMessage: "Bad Gateway"},
	} {
		for callName, do := range calls {
			t.Run(tc.name+"/"+callName, func(t *testing.T) {
				t.Parallel()
				fake := ollamatest.NewServer(t, tc.cfg)
				p := newProvider(t, fake.URL(), func(o *provider.Options) {
					o.APIKey = tc.key
					if tc.model != "" {
						o.Model = tc.model
					}
				})
				resp, err := do(p, context.Background(), hello())
				e := wantError(t, err, tc.code)
				if resp != nil {
					t.Errorf("response = %+v, want nil", resp)
				}
				if e.ProviderStatus != tc.status {
					t.Errorf("provider status = %d, want %d", e.ProviderStatus, tc.status)
				}
				if e.RetryAfter() != tc.retryAfter {
					t.Errorf("retry-after = %v, want %v", e.RetryAfter(), tc.retryAfter)
				}
				if !strings.Contains(e.Message, tc.inMessage) {
					t.Errorf("message %q does not contain %q", e.Message, tc.inMessage)
				}
			})
		}
	}
}

func TestNotFoundNamesTheHost(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	p := newProvider(t, fake.URL(), func(o *provider.Options) { o.Model = "absent" })
	_, err := p.Complete(context.Background(), hello())
	e := wantError(t, err, schema.CodeNotFound)
	if !strings.Contains(e.Message, fake.URL()) {
		t.Errorf("message %q does not name the host %s", e.Message, fake.URL())
	}
}

func TestWrongAPIBaseSaysSo(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	// A path prefix where no Ollama API lives: the host answers 404 text.
	p := newProvider(t, fake.URL()+"/ollama")
	_, err := p.Complete(context.Background(), hello())
	e := wantError(t, err, schema.CodeNotFound)
	if !strings.Contains(e.Message, "api_base must be the host root") {
		t.Errorf("message %q does not explain the api_base", e.Message)
	}
}

func TestQueueFullOnRealLimit(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	fake := ollamatest.NewServer(t, ollamatest.Config{Parallel: 1, MaxQueue: 0, Hold: hold})
	p := newProvider(t, fake.URL())

	var wg sync.WaitGroup
	var firstErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, firstErr = p.Complete(context.Background(), hello())
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 1 }); err != nil {
		t.Fatal(err)
	}

	_, err := p.Complete(context.Background(), hello())
	e := wantError(t, err, schema.CodeRateLimited)
	if e.RetryAfter() != ollama.BusyRetryAfter || !e.Retryable() {
		t.Errorf("busy error %+v: want retryable with retry-after %v", e, ollama.BusyRetryAfter)
	}

	close(hold)
	wg.Wait()
	if firstErr != nil {
		t.Errorf("held call: %v", firstErr)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	slow := ollamatest.Config{Delay: time.Hour}
	t.Run("context deadline", func(t *testing.T) {
		t.Parallel()
		for callName, do := range calls {
			fake := ollamatest.NewServer(t, slow)
			p := newProvider(t, fake.URL())
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_, err := do(p, ctx, hello())
			cancel()
			t.Logf("%s: %v", callName, err)
			wantError(t, err, schema.CodeTimeout)
		}
	})
	t.Run("Options.Timeout", func(t *testing.T) {
		t.Parallel()
		fake := ollamatest.NewServer(t, slow)
		p := newProvider(t, fake.URL(), func(o *provider.Options) { o.Timeout = 50 * time.Millisecond })
		_, err := p.Complete(context.Background(), hello())
		wantError(t, err, schema.CodeTimeout)
	})
	t.Run("Options.StreamTimeout", func(t *testing.T) {
		t.Parallel()
		fake := ollamatest.NewServer(t, slow)
		p := newProvider(t, fake.URL(), func(o *provider.Options) { o.StreamTimeout = 50 * time.Millisecond })
		_, err := p.Stream(context.Background(), hello(), func(schema.ChunkChoice) error { return nil })
		wantError(t, err, schema.CodeTimeout)
	})
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ln.Close()
	p := newProvider(t, base)
	for callName, do := range calls {
		_, err := do(p, context.Background(), hello())
		t.Logf("%s: %v", callName, err)
		wantError(t, err, schema.CodeConnection)
	}
	wantError(t, p.CheckModel(context.Background()), schema.CodeConnection)
}

func TestStreamFailsMidway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mid  ollamatest.MidStream
		code string
	}{
		{"error line", ollamatest.MidStream{After: 2, Error: "an error was encountered while running the model: unexpected EOF"},
			schema.CodeProviderError},
		{"busy line", ollamatest.MidStream{After: 2, Error: ollamatest.BusyMessage}, schema.CodeRateLimited},
		{"connection dropped", ollamatest.MidStream{After: 2}, schema.CodeConnection},
		{"ended without final line", ollamatest.MidStream{After: 2, EndCleanly: true}, schema.CodeConnection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mid := tc.mid
			fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "one two three four", FailMidStream: &mid})
			p := newProvider(t, fake.URL())
			var deltas []string
			resp, err := p.Stream(context.Background(), hello(), func(c schema.ChunkChoice) error {
				d := c.Delta.Content
				deltas = append(deltas, d)
				return nil
			})
			t.Logf("error: %v", err)
			wantError(t, err, tc.code)
			if resp != nil {
				t.Errorf("response = %+v, want nil", resp)
			}
			if strings.Join(deltas, "") != "one two" {
				t.Errorf("deltas = %q, want the two before the failure", deltas)
			}
		})
	}
}

func TestCompleteFailsMidway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mid  ollamatest.MidStream
		code string
	}{
		// Ollama answers a non-streamed chat whose generation fails with a 500.
		{"runner error", ollamatest.MidStream{After: 1, Error: "model runner has unexpectedly stopped"}, schema.CodeProviderError},
		{"connection dropped", ollamatest.MidStream{After: 1}, schema.CodeConnection},
		{"empty body", ollamatest.MidStream{After: 1, EndCleanly: true}, schema.CodeConnection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mid := tc.mid
			fake := ollamatest.NewServer(t, ollamatest.Config{FailMidStream: &mid})
			p := newProvider(t, fake.URL())
			_, err := p.Complete(context.Background(), hello())
			t.Logf("error: %v", err)
			wantError(t, err, tc.code)
		})
	}
}

func TestStreamCancelledMidway(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: strings.Repeat("w ", 200), Delay: 5 * time.Millisecond})
	p := newProvider(t, fake.URL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := p.Stream(ctx, hello(), func(schema.ChunkChoice) error {
		cancel() // the producer goes away; emit itself does not fail
		return nil
	})
	wantError(t, err, schema.CodeCancelled)
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := fake.Await(wctx, func(s ollamatest.Stats) bool { return s.Disconnected == 1 }); err != nil {
		t.Fatalf("the fake did not see the connection close: %v", err)
	}
}

func TestSecretsStayOutOfErrorsAndResults(t *testing.T) {
	t.Parallel()
	const key = "sk-proxy-0123456789abcdef"
	check := func(t *testing.T, what string, v any) {
		t.Helper()
		var s string
		switch v := v.(type) {
		case error:
			if v == nil {
				return
			}
			s = v.Error()
			if e, ok := v.(*schema.Error); ok {
				s += " " + e.Message
			}
		case *schema.Response:
			if v == nil {
				return
			}
			b, _ := schema.JSON.Marshal(v)
			s = string(b)
		}
		if strings.Contains(s, key) {
			t.Errorf("%s contains the key: %s", what, s)
		}
	}
	withKey := func(o *provider.Options) { o.APIKey = key }

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		fake := ollamatest.NewServer(t, ollamatest.Config{Key: key})
		p := newProvider(t, fake.URL(), withKey)
		resp, err := p.Complete(context.Background(), hello())
		if err != nil {
			t.Fatal(err)
		}
		check(t, "response", resp)
		resp, err = p.Stream(context.Background(), hello(), func(schema.ChunkChoice) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		check(t, "streamed response", resp)
		if err := p.CheckModel(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, r := range fake.Requests() {
			if got := r.Header.Get("Authorization"); got != "Bearer "+key {
				t.Errorf("%s %s: Authorization = %q, want the bearer key", r.Method, r.Path, got)
			}
		}
	})
	for name, cfg := range map[string]ollamatest.Config{
		"refused key":     {Key: "another-key"},
		"echoed key":      {Key: key, Fail: &ollamatest.Failure{Status: 400, Message: "bad header Bearer " + key}},
		"echoed in page":  {Key: key, Fail: &ollamatest.Failure{Status: 502, RawBody: "upstream said: " + key}},
		"echoed midway":   {Key: key, FailMidStream: &ollamatest.MidStream{After: 1, Error: "token " + key + " expired"}},
		"busy":            {Key: key, Fail: ollamatest.Busy()},
		"model not found": {Key: key, Models: []string{"other:1b"}},
		"slow":            {Key: key, Delay: time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := ollamatest.NewServer(t, cfg)
			p := newProvider(t, fake.URL(), withKey)
			for callName, do := range calls {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				resp, err := do(p, ctx, hello())
				cancel()
				if err == nil {
					t.Errorf("%s: no error", callName)
				}
				check(t, callName+" error", err)
				check(t, callName+" response", resp)
			}
			check(t, "CheckModel error", p.CheckModel(context.Background()))
		})
	}
	t.Run("refused connection", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + ln.Addr().String()
		ln.Close()
		p := newProvider(t, base, withKey)
		_, err = p.Complete(context.Background(), hello())
		check(t, "error", err)
	})
}

// A status Ollama never sends still yields a typed error.
func TestUnexpectedStatus(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Fail: &ollamatest.Failure{Status: http.StatusTeapot, Message: "teapot"}})
	p := newProvider(t, fake.URL())
	_, err := p.Complete(context.Background(), hello())
	wantError(t, err, schema.CodeProviderError)
}
