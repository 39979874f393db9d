package anthropic_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/anthropic"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey   = "sk-ant-api03-test-key-0123456789"
	testModel = "claude-test-4"
)

// newProvider builds an adapter against fake with a client of its own,
// whose idle connections are closed when the test ends.
func newProvider(t *testing.T, fake *anthropictest.Server, edit func(*provider.Options)) *anthropic.Provider {
	t.Helper()
	c := provider.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	o := provider.Options{Model: testModel, APIBase: fake.URL(), APIKey: testKey, HTTP: c}
	if edit != nil {
		edit(&o)
	}
	p, err := anthropic.New(o)
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

// sentBody returns the JSON body of the only request fake received.
func sentBody(t *testing.T, fake *anthropictest.Server) map[string]any {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake got %d requests, want 1", len(reqs))
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].Raw, &body); err != nil {
		t.Fatalf("sent body is not JSON: %v", err)
	}
	return body
}

// jsonEqual reports whether got equals want once both are JSON values.
func jsonEqual(t *testing.T, got map[string]any, want string) {
	t.Helper()
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("sent body\n got %s\nwant %s", g, want)
	}
}

func wantCode(t *testing.T, err error, code string) *schema.Error {
	t.Helper()
	var e *schema.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *schema.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("code = %s, want %s (%v)", e.Code, code, e)
	}
	if !strings.Contains(e.Message, "anthropic") {
		t.Errorf("message %q does not name the provider", e.Message)
	}
	return e
}

func TestCompletePlain(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Key: testKey})
	p := newProvider(t, fake, nil)

	resp, err := p.Complete(context.Background(), &schema.Request{
		Model:    "tier-name", // the tier, not the provider's model
		Messages: msgs("user", "hello there world"),
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}

	rec := fake.Requests()[0]
	if rec.Method != "POST" || rec.Path != "/v1/messages" {
		t.Errorf("sent %s %s, want POST /v1/messages", rec.Method, rec.Path)
	}
	for h, want := range map[string]string{
		"X-Api-Key":         testKey,
		"Anthropic-Version": "2023-06-01",
		"Content-Type":      "application/json",
	} {
		if got := rec.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if rec.Header.Get("Authorization") != "" {
		t.Error("sent an Authorization header; Anthropic takes x-api-key")
	}
	jsonEqual(t, sentBody(t, fake), `{"model":"claude-test-4","max_tokens":4096,
		"messages":[{"role":"user","content":"hello there world"}]}`)

	want := &schema.Response{
		ID:    resp.ID,
		Model: testModel,
		Choices: []schema.Choice{{
			Message:      schema.Message{Role: "assistant", Content: "echo: hello there world"},
			FinishReason: schema.FinishStop,
		}},
		Usage: schema.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7},
	}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("response\n got %+v\nwant %+v", resp, want)
	}
	if !strings.HasPrefix(resp.ID, "msg_") {
		t.Errorf("ID = %q, want the provider's msg_ id", resp.ID)
	}
}

func TestSystemPrompt(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)

	resp, err := p.Complete(context.Background(), &schema.Request{Messages: msgs(
		"system", "You are terse.",
		"developer", "Answer in French.",
		"user", "hi",
	)})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	jsonEqual(t, sentBody(t, fake), `{"model":"claude-test-4","max_tokens":4096,
		"system":"You are terse.\n\nAnswer in French.",
		"messages":[{"role":"user","content":"hi"}]}`)
	if resp.Usage.PromptTokens != 7 { // 3 + 3 system words + 1 user word
		t.Errorf("prompt tokens = %d, want 7", resp.Usage.PromptTokens)
	}
}

func TestMultiTurn(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)

	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{
		{Role: "user", Content: "first question", Name: "alice"},
		{Role: "assistant", Content: "first answer"},
		{Role: "system", Content: "be brief"},
		{Role: "user", Content: "second"},
		{Role: "user", Content: "question"},
		{Role: "assistant", Content: "Sure: "}, // a prefill
	}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	jsonEqual(t, sentBody(t, fake), `{"model":"claude-test-4","max_tokens":4096,"system":"be brief",
		"messages":[
			{"role":"user","content":"first question"},
			{"role":"assistant","content":"first answer"},
			{"role":"user","content":"second"},
			{"role":"user","content":"question"},
			{"role":"assistant","content":"Sure:"}]}`)
	if got := resp.Text(); got != "echo: question" {
		t.Errorf("text = %q", got)
	}
}

func TestParameters(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		cfg    anthropictest.Config
		req    schema.Request
		body   string
		text   string
		finish string
	}{{
		name: "all set",
		req: schema.Request{
			Messages: msgs("user", "a b c"), MaxTokens: ptr(100), Temperature: ptr(0.25),
			TopP: ptr(0.5), Stop: schema.StopList{"END", "\n", " "}, User: "user-42",
			Metadata: map[string]string{"trace": "x"},
		},
		body: `{"model":"claude-test-4","max_tokens":100,"messages":[{"role":"user","content":"a b c"}],
			"temperature":0.25,"top_p":0.5,"stop_sequences":["END"],"metadata":{"user_id":"user-42"}}`,
		text: "echo: a b c", finish: "stop",
	}, {
		name: "max_completion_tokens and a temperature over 1",
		req:  schema.Request{Messages: msgs("user", "x"), MaxCompletionTokens: ptr(7), Temperature: ptr(1.6)},
		body: `{"model":"claude-test-4","max_tokens":7,"messages":[{"role":"user","content":"x"}],"temperature":1}`,
		text: "echo: x", finish: "stop",
	}, {
		name: "max_tokens cuts the reply",
		req:  schema.Request{Messages: msgs("user", "one two three"), MaxTokens: ptr(2)},
		body: `{"model":"claude-test-4","max_tokens":2,"messages":[{"role":"user","content":"one two three"}]}`,
		text: "echo: one", finish: "length",
	}, {
		name: "stop sequence",
		cfg:  anthropictest.Config{Reply: "red green STOP blue"},
		req:  schema.Request{Messages: msgs("user", "colours"), Stop: schema.StopList{"STOP"}},
		body: `{"model":"claude-test-4","max_tokens":4096,"messages":[{"role":"user","content":"colours"}],
			"stop_sequences":["STOP"]}`,
		text: "red green ", finish: "stop",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := anthropictest.NewServer(t, tc.cfg)
			p := newProvider(t, fake, nil)
			resp, err := p.Complete(context.Background(), &tc.req)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			jsonEqual(t, sentBody(t, fake), tc.body)
			if resp.Text() != tc.text || resp.Choices[0].FinishReason != tc.finish {
				t.Errorf("got %q/%s, want %q/%s", resp.Text(), resp.Choices[0].FinishReason, tc.text, tc.finish)
			}
			u := resp.Usage
			if u.CompletionTokens != len(strings.Fields(tc.text)) || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage %+v does not match %q", u, tc.text)
			}
		})
	}
}

func TestFinishReasons(t *testing.T) {
	t.Parallel()
	for stop, want := range map[string]string{
		"end_turn":      schema.FinishStop,
		"stop_sequence": schema.FinishStop,
		"pause_turn":    schema.FinishStop,
		"max_tokens":    schema.FinishLength,
		"tool_use":      schema.FinishToolCalls,
		"refusal":       schema.FinishContentFilter,
	} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			fake := anthropictest.NewServer(t, anthropictest.Config{StopReason: stop})
			p := newProvider(t, fake, nil)
			req := &schema.Request{Messages: msgs("user", "hi")}
			resp, err := p.Complete(context.Background(), req)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			sresp, err := p.Stream(context.Background(), req, func(schema.ChunkChoice) error { return nil })
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if resp.Choices[0].FinishReason != want || sresp.Choices[0].FinishReason != want {
				t.Errorf("finish = %s (stream %s), want %s",
					resp.Choices[0].FinishReason, sresp.Choices[0].FinishReason, want)
			}
		})
	}
}

func TestStream(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Reply: "alpha beta  gamma delta"})
	p := newProvider(t, fake, nil)

	var deltas []string
	resp, err := p.Stream(context.Background(), &schema.Request{
		Messages: msgs("system", "sys", "user", "four words of prompt"), MaxTokens: ptr(50),
	}, func(c schema.ChunkChoice) error {
		d := c.Delta.Content
		deltas = append(deltas, d)
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if want := []string{"alpha ", "beta  ", "gamma ", "delta"}; !reflect.DeepEqual(deltas, want) {
		t.Errorf("deltas = %q, want %q", deltas, want)
	}
	if got := strings.Join(deltas, ""); resp.Text() != got {
		t.Errorf("content %q != joined deltas %q", resp.Text(), got)
	}
	want := schema.Usage{PromptTokens: 5, CompletionTokens: 4, TotalTokens: 9}
	if resp.Usage != want || resp.Choices[0].FinishReason != "stop" || resp.Model != testModel ||
		!strings.HasPrefix(resp.ID, "msg_") || resp.Choices[0].Message.Role != "assistant" {
		t.Errorf("response %+v", resp)
	}
	body := sentBody(t, fake)
	if body["stream"] != true || body["system"] != "sys" || body["max_tokens"] != 50.0 {
		t.Errorf("sent body %v", body)
	}
	if got := fake.Requests()[0].Header.Get("Accept"); got != "text/event-stream" {
		t.Errorf("Accept = %q", got)
	}
}

func TestStreamLengthFinish(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Reply: "a b c d e"})
	p := newProvider(t, fake, nil)
	resp, err := p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "x"), MaxTokens: ptr(3)},
		func(schema.ChunkChoice) error { return nil })
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if resp.Text() != "a b c" || resp.Choices[0].FinishReason != "length" || resp.Usage.CompletionTokens != 3 {
		t.Errorf("response %q %s %+v", resp.Text(), resp.Choices[0].FinishReason, resp.Usage)
	}
}

func TestStreamEmitErrorStops(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{
		Reply: strings.Repeat("word ", 100),
		Delay: 20 * time.Millisecond,
	})
	p := newProvider(t, fake, nil)
	stop := errors.New("producer gone")
	calls := 0
	_, err := p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "go")}, func(schema.ChunkChoice) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want emit's error", err)
	}
	if calls != 1 {
		t.Errorf("emit called %d times after failing", calls)
	}
	select {
	case <-fake.Aborts():
	case <-time.After(10 * time.Second):
		t.Fatal("the fake never saw the connection close")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		cfg        anthropictest.Config
		msgs       []schema.Message
		code       string
		status     int
		retryAfter time.Duration
		contains   string
	}{
		{name: "wrong key", cfg: anthropictest.Config{Key: "sk-ant-other"},
			code: schema.CodeAuthentication, status: 401, contains: "invalid x-api-key"},
		{name: "permission", cfg: anthropictest.Config{Fail: anthropictest.Documented(403)},
			code: schema.CodeAuthentication, status: 403, contains: "permission_error"},
		{name: "bad request", msgs: msgs("assistant", "I start", "user", "then me"),
			code: schema.CodeBadRequest, status: 400, contains: `first message must use the "user" role`},
		{name: "context window", cfg: anthropictest.Config{ContextWindow: 3},
			msgs: msgs("user", "this prompt has six words"),
			code: schema.CodeContextWindowExceeded, status: 400, contains: "prompt is too long: 5 tokens > 3 maximum"},
		{name: "unknown model", cfg: anthropictest.Config{Models: []string{"claude-other"}},
			code: schema.CodeNotFound, status: 404, contains: "model: claude-test-4"},
		{name: "too large", cfg: anthropictest.Config{Fail: anthropictest.Documented(413)},
			code: schema.CodePayloadTooLarge, status: 413},
		{name: "rate limited", cfg: anthropictest.Config{Fail: anthropictest.RateLimited("7")},
			code: schema.CodeRateLimited, status: 429, retryAfter: 7 * time.Second, contains: "rate_limit_error"},
		{name: "server error", cfg: anthropictest.Config{Fail: anthropictest.Documented(500)},
			code: schema.CodeProviderError, status: 500, contains: "api_error"},
		{name: "overloaded", cfg: anthropictest.Config{Fail: anthropictest.Overloaded()},
			code: schema.CodeRateLimited, status: 529, contains: "overloaded_error: Overloaded"},
		{name: "content filter", cfg: anthropictest.Config{Fail: &anthropictest.Failure{Status: 400,
			Type: "invalid_request_error", Message: "Output blocked by content filtering policy"}},
			code: schema.CodeContentPolicy, status: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := anthropictest.NewServer(t, tc.cfg)
			p := newProvider(t, fake, nil)
			m := tc.msgs
			if m == nil {
				m = msgs("user", "hello")
			}
			req := &schema.Request{Messages: m}
			_, cerr := p.Complete(context.Background(), req)
			_, serr := p.Stream(context.Background(), req, func(schema.ChunkChoice) error {
				t.Error("emit called on a failed call")
				return nil
			})
			for _, err := range []error{cerr, serr} {
				e := wantCode(t, err, tc.code)
				if e.ProviderStatus != tc.status || e.RetryAfter() != tc.retryAfter {
					t.Errorf("status %d retry-after %v, want %d %v", e.ProviderStatus, e.RetryAfter(), tc.status, tc.retryAfter)
				}
				if !strings.Contains(e.Message, tc.contains) || !strings.Contains(e.Message, "request-id req_") {
					t.Errorf("message %q lacks %q or the request-id", e.Message, tc.contains)
				}
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	slow := anthropictest.Config{Delay: time.Minute}
	req := &schema.Request{Messages: msgs("user", "slow")}
	emit := func(schema.ChunkChoice) error { return nil }

	t.Run("ctx deadline", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t, anthropictest.NewServer(t, slow), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := p.Complete(ctx, req)
		wantCode(t, err, schema.CodeTimeout)
	})
	t.Run("Options.Timeout", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t, anthropictest.NewServer(t, slow), func(o *provider.Options) { o.Timeout = 50 * time.Millisecond })
		_, err := p.Complete(context.Background(), req)
		wantCode(t, err, schema.CodeTimeout)
	})
	t.Run("Options.StreamTimeout midway", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t, anthropictest.NewServer(t, slow), func(o *provider.Options) { o.StreamTimeout = 50 * time.Millisecond })
		_, err := p.Stream(context.Background(), req, emit)
		wantCode(t, err, schema.CodeTimeout)
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		fake := anthropictest.NewServer(t, anthropictest.Config{Reply: strings.Repeat("w ", 100), Delay: 20 * time.Millisecond})
		p := newProvider(t, fake, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := p.Stream(ctx, req, func(schema.ChunkChoice) error {
			cancel() // the producer goes away after the first token
			return nil
		})
		wantCode(t, err, schema.CodeCancelled)
	})
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := provider.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	p, err := anthropic.New(provider.Options{Model: testModel, APIKey: testKey, APIBase: "http://" + addr, HTTP: c})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "hi")})
	e := wantCode(t, err, schema.CodeConnection)
	if !e.Retryable() {
		t.Error("connection refused should be retryable")
	}
	_, err = p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "hi")}, func(schema.ChunkChoice) error { return nil })
	wantCode(t, err, schema.CodeConnection)
}

func TestStreamFailsMidway(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  anthropictest.Config
		code string
	}{
		{"overloaded event", anthropictest.Config{FailMidStream: anthropictest.FaultError, FailAfter: 2}, schema.CodeRateLimited},
		{"api_error event", anthropictest.Config{FailMidStream: anthropictest.FaultError, FailAfter: 2,
			StreamError: anthropictest.Documented(500)}, schema.CodeProviderError},
		{"connection cut", anthropictest.Config{FailMidStream: anthropictest.FaultCut, FailAfter: 2}, schema.CodeConnection},
		{"cut after the last delta", anthropictest.Config{FailMidStream: anthropictest.FaultCut, FailAfter: 99}, schema.CodeConnection},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Reply = "one two three four"
			fake := anthropictest.NewServer(t, tc.cfg)
			p := newProvider(t, fake, nil)
			var got []string
			resp, err := p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "hi")}, func(c schema.ChunkChoice) error {
				d := c.Delta.Content
				got = append(got, d)
				return nil
			})
			if resp != nil {
				t.Errorf("got a response %+v with the error", resp)
			}
			e := wantCode(t, err, tc.code)
			if !e.Retryable() {
				t.Errorf("%v should be retryable", e)
			}
			if want := min(tc.cfg.FailAfter, 4); len(got) != want {
				t.Errorf("emitted %q before the failure, want %d deltas", got, want)
			}
		})
	}
}

func TestOnlySystemMessages(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	_, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("system", "alone")})
	wantCode(t, err, schema.CodeBadRequest)
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("a request sure to fail was sent (%d)", n)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    provider.Options
		want string
	}{
		{"no key", provider.Options{Model: "m"}, "APIKey"},
		{"no model", provider.Options{APIKey: testKey}, "Model"},
		{"bad base", provider.Options{Model: "m", APIKey: testKey, APIBase: "ftp://host"}, "APIBase"},
	} {
		_, err := anthropic.New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || schema.CodeOf(err) != schema.CodeBadRequest {
			t.Errorf("%s: err = %v, want one naming %s", tc.name, err, tc.want)
		}
	}
}

func TestAPIBaseForms(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	for _, base := range []string{fake.URL(), fake.URL() + "/", fake.URL() + "/v1", fake.URL() + "/v1/messages/"} {
		p := newProvider(t, fake, func(o *provider.Options) { o.APIBase = base })
		if _, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "hi")}); err != nil {
			t.Errorf("base %q: %v", base, err)
		}
	}
	for _, r := range fake.Requests() {
		if r.Path != "/v1/messages" {
			t.Errorf("path %q", r.Path)
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			req := &schema.Request{Messages: msgs("user", strings.Repeat("w ", i+1))}
			var err error
			if i%2 == 0 {
				_, err = p.Complete(context.Background(), req)
			} else {
				_, err = p.Stream(context.Background(), req, func(schema.ChunkChoice) error { return nil })
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := len(fake.Requests()); got != n {
		t.Errorf("fake saw %d requests, want %d", got, n)
	}
}
