package cohere_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/cohere"
	"github.com/llmq/llmq/worker/provider/cohere/coheretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey   = "co-test-key-0123456789SECRET"
	testModel = "command-r-plus"
)

func newProvider(t *testing.T, fake *coheretest.Server, edit func(*provider.Options)) *cohere.Provider {
	t.Helper()
	c := provider.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	o := provider.Options{Model: testModel, APIBase: fake.URL(), APIKey: testKey, HTTP: c}
	if edit != nil {
		edit(&o)
	}
	p, err := cohere.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func msgs(pairs ...string) []schema.Message {
	var out []schema.Message
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, schema.Message{Role: pairs[i], Content: schema.Content(pairs[i+1])})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func wantError(t *testing.T, err error, code string) *schema.Error {
	t.Helper()
	var e *schema.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not a *schema.Error (want %s)", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s, want %s (%v)", e.Code, code, e)
	}
	return e
}

func TestComplete_MapsRequestAndReply(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{Key: testKey, Models: []string{testModel}})
	p := newProvider(t, fake, nil)
	resp, err := p.Complete(context.Background(), &schema.Request{
		Messages:    msgs("developer", "be brief", "user", "one two", "assistant", "ok", "user", "three four five six"),
		MaxTokens:   ptr(3),
		Temperature: ptr(0.2),
		TopP:        ptr(1.0),
		Stop:        []string{"zzz"},
		User:        "u-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != "echo: three four" || resp.Choices[0].FinishReason != schema.FinishLength || resp.Model != testModel ||
		!strings.HasPrefix(resp.ID, "c0e5f1a2-") {
		t.Errorf("response %+v", resp)
	}
	// Billed units, not the template-inflated tokens.
	if resp.Usage != (schema.Usage{PromptTokens: 9, CompletionTokens: 3, TotalTokens: 12}) {
		t.Errorf("usage %+v", resp.Usage)
	}
	r := fake.Requests()[0]
	if r.Path != "/v2/chat" || r.Header.Get("Authorization") != "Bearer "+testKey {
		t.Errorf("path %q authorization %q", r.Path, r.Header.Get("Authorization"))
	}
	want := map[string]any{
		"model": testModel,
		"messages": []any{
			map[string]any{"role": "system", "content": "be brief"},
			map[string]any{"role": "user", "content": "one two"},
			map[string]any{"role": "assistant", "content": "ok"},
			map[string]any{"role": "user", "content": "three four five six"},
		},
		"max_tokens": 3.0, "temperature": 0.2, "p": 0.99, "stop_sequences": []any{"zzz"}, "stream": false,
	}
	if !reflect.DeepEqual(r.Body, want) {
		t.Errorf("body\n got %v\nwant %v", r.Body, want)
	}
}

func TestComplete_FinishReasons(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{Reply: "a b STOP c"})
	p := newProvider(t, fake, nil)
	for _, c := range []struct {
		req    *schema.Request
		text   string
		finish string
	}{
		{&schema.Request{Messages: msgs("user", "x")}, "a b STOP c", schema.FinishStop},
		{&schema.Request{Messages: msgs("user", "x"), Stop: []string{" STOP"}}, "a b", schema.FinishStop},
		{&schema.Request{Messages: msgs("user", "x"), MaxCompletionTokens: ptr(1)}, "a", schema.FinishLength},
	} {
		resp, err := p.Complete(context.Background(), c.req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text() != c.text || resp.Choices[0].FinishReason != c.finish {
			t.Errorf("text %q finish %q, want %q %q", resp.Text(), resp.Choices[0].FinishReason, c.text, c.finish)
		}
	}
}

func TestStream_EmitsDeltasAndReadsMessageEnd(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{Reply: "one two three"})
	p := newProvider(t, fake, nil)
	var pieces []string
	resp, err := p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "a b")}, func(c schema.ChunkChoice) error {
		d := c.Delta.Content
		pieces = append(pieces, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pieces, []string{"one", " two", " three"}) {
		t.Errorf("pieces %q", pieces)
	}
	if resp.Text() != "one two three" || resp.Choices[0].FinishReason != schema.FinishStop ||
		resp.Usage != (schema.Usage{PromptTokens: 2, CompletionTokens: 3, TotalTokens: 5}) || !strings.HasPrefix(resp.ID, "c0e5f1a2-") {
		t.Errorf("response %+v", resp)
	}
	if b := fake.Requests()[0].Body; b["stream"] != true {
		t.Errorf("body %v", b)
	}
}

func TestStream_Faults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		fault coheretest.StreamFault
		code  string
		in    string
	}{
		{coheretest.FaultCut, schema.CodeConnection, "cohere: "},
		{coheretest.FaultEnd, schema.CodeConnection, "stream ended midway, before message-end"},
		{coheretest.FaultError, schema.CodeProviderError, "internal server error during generation"},
	}
	for _, c := range cases {
		fake := coheretest.NewServer(t, coheretest.Config{Reply: "a b c d", FailMidStream: c.fault, FailAfter: 2})
		p := newProvider(t, fake, nil)
		var pieces []string
		_, err := p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "x")}, func(c schema.ChunkChoice) error {
			d := c.Delta.Content
			pieces = append(pieces, d)
			return nil
		})
		e := wantError(t, err, c.code)
		if !strings.Contains(e.Message, c.in) || len(pieces) != 2 {
			t.Errorf("fault %d: %q after %q", c.fault, e.Message, pieces)
		}
	}
}

func TestStream_HangEndsAtDeadlineAndEmitErrorStops(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{Reply: "a b c", FailMidStream: coheretest.FaultHang, FailAfter: 1})
	p := newProvider(t, fake, func(o *provider.Options) { o.StreamTimeout = 200 * time.Millisecond })
	_, err := p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "x")}, nil)
	wantError(t, err, schema.CodeTimeout)

	fake = coheretest.NewServer(t, coheretest.Config{Reply: "a b c"})
	p = newProvider(t, fake, nil)
	stop := errors.New("producer gone")
	_, err = p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "x")}, func(schema.ChunkChoice) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want emit's error", err)
	}
}

func TestComplete_CancelledByCaller(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{Delay: time.Minute})
	p := newProvider(t, fake, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := p.Complete(ctx, &schema.Request{Messages: msgs("user", "x")})
	wantError(t, err, schema.CodeCancelled)
}

// Every failure gets the code the other adapters give the same class.
func TestErrors(t *testing.T) {
	t.Parallel()
	fail := func(f coheretest.Failure) coheretest.Config { return coheretest.Config{Key: testKey, Fail: &f} }
	cases := []struct {
		name       string
		cfg        coheretest.Config
		key        string
		prompt     string
		code       string
		status     int
		retryAfter time.Duration
		in         string
	}{
		{name: "wrong key", cfg: coheretest.Config{Key: testKey}, key: "co-other-key-000000", code: schema.CodeAuthentication, status: 401, in: "invalid api token"},
		{name: "forbidden", cfg: fail(coheretest.Forbidden()), code: schema.CodeAuthentication, status: 403},
		{name: "billing limit", cfg: fail(coheretest.PaymentRequired()), code: schema.CodeAuthentication, status: 402, in: "payment method"},
		{name: "unknown model", cfg: coheretest.Config{Key: testKey, Models: []string{"command-a"}}, code: schema.CodeNotFound, status: 404, in: "not found"},
		{name: "bad request", cfg: fail(coheretest.BadRequest("invalid value for temperature")), code: schema.CodeBadRequest, status: 400, in: "temperature"},
		{name: "context window", cfg: coheretest.Config{Key: testKey, ContextWindow: 3}, prompt: "one two three four",
			code: schema.CodeContextWindowExceeded, status: 400, in: "too many tokens"},
		{name: "blocked token", cfg: fail(coheretest.BlockedToken()), code: schema.CodeContentPolicy, status: 498},
		{name: "rate limited", cfg: fail(coheretest.RateLimited(3 * time.Second)), code: schema.CodeRateLimited, status: 429,
			retryAfter: 3 * time.Second, in: "Trial key"},
		{name: "server error", cfg: fail(coheretest.ServerError(500)), code: schema.CodeProviderError, status: 500},
		{name: "unavailable", cfg: fail(coheretest.ServerError(503)), code: schema.CodeProviderError, status: 503},
		{name: "gateway timeout", cfg: fail(coheretest.ServerError(504)), code: schema.CodeProviderError, status: 504},
	}
	for _, c := range cases {
		for _, stream := range []bool{false, true} {
			mode := "complete"
			if stream {
				mode = "stream"
			}
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				fake := coheretest.NewServer(t, c.cfg)
				p := newProvider(t, fake, func(o *provider.Options) {
					if c.key != "" {
						o.APIKey = c.key
					}
				})
				prompt := c.prompt
				if prompt == "" {
					prompt = "hi"
				}
				req := &schema.Request{Messages: msgs("user", prompt)}
				var err error
				if stream {
					_, err = p.Stream(context.Background(), req, nil)
				} else {
					_, err = p.Complete(context.Background(), req)
				}
				e := wantError(t, err, c.code)
				if e.ProviderStatus != c.status {
					t.Errorf("provider status %d, want %d", e.ProviderStatus, c.status)
				}
				if c.retryAfter > 0 && e.RetryAfter() != c.retryAfter {
					t.Errorf("retry after %v, want %v", e.RetryAfter(), c.retryAfter)
				}
				if !strings.HasPrefix(e.Message, "cohere: ") || !strings.Contains(e.Message, c.in) {
					t.Errorf("message %q, want the cohere: prefix and %q", e.Message, c.in)
				}
				if strings.Contains(e.Message, testKey) || strings.Contains(e.Message, "co-other-key-000000") {
					t.Errorf("message %q holds a key", e.Message)
				}
			})
		}
	}
}

func TestErrorEchoingTheKeyIsRedacted(t *testing.T) {
	t.Parallel()
	f := coheretest.BadRequest("bad header Authorization: Bearer " + testKey)
	fake := coheretest.NewServer(t, coheretest.Config{Fail: &f})
	p := newProvider(t, fake, nil)
	_, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "x")})
	if e := wantError(t, err, schema.CodeBadRequest); strings.Contains(e.Message, testKey) || !strings.Contains(e.Message, "[redacted]") {
		t.Errorf("message %q", e.Message)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	fake := coheretest.Start(coheretest.Config{})
	base := fake.URL()
	fake.Close()
	p := newProvider(t, fake, func(o *provider.Options) { o.APIBase = base })
	_, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "x")})
	wantError(t, err, schema.CodeConnection)
}

func TestNew_ValidatesAndAcceptsLiteLLMBases(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		o    provider.Options
		want string
	}{
		{provider.Options{APIKey: testKey}, "Options.Model"},
		{provider.Options{Model: testModel}, "COHERE_API_KEY"},
		{provider.Options{Model: testModel, APIKey: testKey, APIBase: "api.cohere.com"}, "Options.APIBase"},
	} {
		_, err := cohere.New(c.o)
		if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, c.want) || strings.Contains(e.Message, testKey) {
			t.Errorf("message %q, want %q", e.Message, c.want)
		}
	}
	fake := coheretest.NewServer(t, coheretest.Config{})
	for _, suffix := range []string{"", "/", "/v1", "/v2", "/v1/chat", "/v2/chat/"} {
		p := newProvider(t, fake, func(o *provider.Options) { o.APIBase = fake.URL() + suffix })
		if _, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "x")}); err != nil {
			t.Errorf("api_base ending %q: %v", suffix, err)
		}
	}
}

func TestRejectsRolesCohereCannotTake(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{})
	p := newProvider(t, fake, nil)
	_, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("function", "x")})
	wantError(t, err, schema.CodeBadRequest)
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}
