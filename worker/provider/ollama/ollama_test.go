package ollama_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newProvider builds an adapter for the fake's default model at base, with
// its own HTTP client whose idle connections close when the test ends.
func newProvider(t *testing.T, base string, opts ...func(*provider.Options)) *ollama.Provider {
	t.Helper()
	client := provider.NewHTTPClient()
	t.Cleanup(client.CloseIdleConnections)
	o := provider.Options{Model: ollamatest.DefaultModel, APIBase: base, HTTP: client}
	for _, f := range opts {
		f(&o)
	}
	p, err := ollama.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func user(text string) schema.Message {
	return schema.Message{Role: schema.RoleUser, Content: schema.Content(text)}
}

func msg(role, text string) schema.Message {
	return schema.Message{Role: role, Content: schema.Content(text)}
}

func ptr[T any](v T) *T { return &v }

// lastChat returns the only chat request the fake received.
func lastChat(t *testing.T, fake *ollamatest.Server) ollamatest.Recorded {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake received %d requests, want 1", len(reqs))
	}
	if reqs[0].Body == nil {
		t.Fatalf("fake could not decode the body: %s", reqs[0].Raw)
	}
	return reqs[0]
}

func assertResponse(t *testing.T, resp *schema.Response, content, finish string, usage schema.Usage) {
	t.Helper()
	if !strings.HasPrefix(resp.ID, "chatcmpl-") || len(resp.ID) <= len("chatcmpl-") {
		t.Errorf("ID = %q, want chatcmpl-…", resp.ID)
	}
	if resp.Model != ollamatest.DefaultModel {
		t.Errorf("Model = %q, want %q", resp.Model, ollamatest.DefaultModel)
	}
	if resp.Object != "" || resp.Created != 0 || resp.Routing != nil {
		t.Errorf("Object/Created/Routing = %q/%d/%v, want them left to the worker", resp.Object, resp.Created, resp.Routing)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("%d choices, want 1", len(resp.Choices))
	}
	c := resp.Choices[0]
	if c.Index != 0 || c.Message.Role != schema.RoleAssistant {
		t.Errorf("choice index/role = %d/%q, want 0/assistant", c.Index, c.Message.Role)
	}
	if string(c.Message.Content) != content {
		t.Errorf("content = %q, want %q", c.Message.Content, content)
	}
	if c.FinishReason != finish {
		t.Errorf("finish_reason = %q, want %q", c.FinishReason, finish)
	}
	if resp.Usage != usage {
		t.Errorf("usage = %+v, want %+v", resp.Usage, usage)
	}
}

func TestCompleteSendsNonStreamedChatAndMapsReply(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	p := newProvider(t, fake.URL())

	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("hello there")}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	// "echo: hello there": 3 words; the prompt has 2.
	assertResponse(t, resp, "echo: hello there", schema.FinishStop,
		schema.Usage{PromptTokens: 2, CompletionTokens: 3, TotalTokens: 5})

	rec := lastChat(t, fake)
	if rec.Method != http.MethodPost || rec.Path != "/api/chat" {
		t.Errorf("request = %s %s, want POST /api/chat", rec.Method, rec.Path)
	}
	if got := rec.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if got := rec.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q, want application/json", got)
	}
	if got := rec.Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q, want none without a key", got)
	}
	body := rec.Body
	if body.Stream == nil || *body.Stream {
		t.Errorf("stream = %v, want an explicit false (Ollama streams by default)", body.Stream)
	}
	if body.Model != ollamatest.DefaultModel {
		t.Errorf("model = %q, want %q", body.Model, ollamatest.DefaultModel)
	}
	want := []ollamatest.Message{{Role: "user", Content: "hello there"}}
	if !slices.EqualFunc(body.Messages, want, sameMessage) {
		t.Errorf("messages = %+v, want %+v", body.Messages, want)
	}
	if body.Options != nil {
		t.Errorf("options = %v, want none when the request sets no parameters", body.Options)
	}
	if len(body.KeepAlive) != 0 {
		t.Errorf("keep_alive = %s, want none", body.KeepAlive)
	}
}

func sameMessage(a, b ollamatest.Message) bool { return a.Role == b.Role && a.Content == b.Content }

func TestSystemAndDeveloperBecomeSystemMessages(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
	p := newProvider(t, fake.URL())

	_, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{
		msg(schema.RoleSystem, "be brief"),
		msg(schema.RoleDeveloper, "answer in French"),
		user("hi"),
	}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := []ollamatest.Message{
		{Role: "system", Content: "be brief"},
		{Role: "system", Content: "answer in French"},
		{Role: "user", Content: "hi"},
	}
	if got := lastChat(t, fake).Body.Messages; !slices.EqualFunc(got, want, sameMessage) {
		t.Errorf("messages = %+v, want %+v", got, want)
	}
}

func TestMultiTurnKeepsOrderAndCountsAllWords(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	p := newProvider(t, fake.URL())

	req := &schema.Request{
		Messages: []schema.Message{
			msg(schema.RoleSystem, "you are terse"),
			user("what is two plus two"),
			{Role: schema.RoleAssistant, Content: "four", Name: "bot"},
			{Role: schema.RoleUser, Content: "and three plus three", Name: "alice"},
		},
		User:     "someone",
		Metadata: map[string]string{"trace": "x"},
	}
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	// Prompt: 3 + 5 + 1 + 4 words; reply "echo: and three plus three": 5.
	assertResponse(t, resp, "echo: and three plus three", schema.FinishStop,
		schema.Usage{PromptTokens: 13, CompletionTokens: 5, TotalTokens: 18})
	want := []ollamatest.Message{
		{Role: "system", Content: "you are terse"},
		{Role: "user", Content: "what is two plus two"},
		{Role: "assistant", Content: "four"},
		{Role: "user", Content: "and three plus three"},
	}
	if got := lastChat(t, fake).Body.Messages; !slices.EqualFunc(got, want, sameMessage) {
		t.Errorf("messages = %+v, want %+v", got, want)
	}
}

func TestParametersMapToOptions(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "one two three four"})
	p := newProvider(t, fake.URL())

	resp, err := p.Complete(context.Background(), &schema.Request{
		Messages:    []schema.Message{user("count")},
		MaxTokens:   ptr(2),
		Temperature: ptr(0.0),
		TopP:        ptr(0.5),
		Stop:        schema.StopList{"END", "###"},
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	assertResponse(t, resp, "one two", schema.FinishLength,
		schema.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3})

	opts := lastChat(t, fake).Body.Options
	want := map[string]any{
		"num_predict": 2.0,
		"temperature": 0.0, // an explicit zero is sent
		"top_p":       0.5,
		"stop":        []any{"END", "###"},
	}
	if len(opts) != len(want) {
		t.Errorf("options = %v, want %v", opts, want)
	}
	for k, v := range want {
		if got, ok := opts[k]; !ok || !equalJSON(got, v) {
			t.Errorf("options[%q] = %v, want %v", k, got, v)
		}
	}
}

func equalJSON(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		return slices.Equal(as, bs)
	}
	return a == b
}

func TestMaxCompletionTokensIsNumPredict(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "a b c"})
	p := newProvider(t, fake.URL())

	resp, err := p.Complete(context.Background(), &schema.Request{
		Messages:            []schema.Message{user("go")},
		MaxCompletionTokens: ptr(1),
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := lastChat(t, fake).Body.Options; len(got) != 1 || got["num_predict"] != 1.0 {
		t.Errorf("options = %v, want only num_predict 1", got)
	}
	if resp.Text() != "a" || resp.Choices[0].FinishReason != schema.FinishLength {
		t.Errorf("reply = %q/%s, want \"a\"/length", resp.Text(), resp.Choices[0].FinishReason)
	}
}

func TestStopSequenceEndsReplyWithStop(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "alpha beta END gamma"})
	p := newProvider(t, fake.URL())

	resp, err := p.Complete(context.Background(), &schema.Request{
		Messages: []schema.Message{user("go")},
		Stop:     schema.StopList{"END"},
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	assertResponse(t, resp, "alpha beta ", schema.FinishStop,
		schema.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3})
}

func TestStreamEmitsDeltasInOrder(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "one two three four"})
	p := newProvider(t, fake.URL())

	var deltas []string
	resp, err := p.Stream(context.Background(), &schema.Request{Messages: []schema.Message{user("count to four")}},
		func(c schema.ChunkChoice) error {
			d := c.Delta.Content
			deltas = append(deltas, d)
			return nil
		})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	want := []string{"one", " two", " three", " four"}
	if !slices.Equal(deltas, want) {
		t.Errorf("deltas = %q, want %q", deltas, want)
	}
	assertResponse(t, resp, strings.Join(deltas, ""), schema.FinishStop,
		schema.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7})

	rec := lastChat(t, fake)
	if rec.Body.Stream == nil || !*rec.Body.Stream {
		t.Errorf("stream = %v, want an explicit true", rec.Body.Stream)
	}
	if got := rec.Header.Get("Accept"); got != "application/x-ndjson" {
		t.Errorf("Accept = %q, want application/x-ndjson", got)
	}
}

func TestStreamLengthFinish(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "a b c d e"})
	p := newProvider(t, fake.URL())

	var got strings.Builder
	resp, err := p.Stream(context.Background(), &schema.Request{Messages: []schema.Message{user("x")}, MaxTokens: ptr(3)},
		func(c schema.ChunkChoice) error { d := c.Delta.Content; got.WriteString(d); return nil })
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	assertResponse(t, resp, "a b c", schema.FinishLength, schema.Usage{PromptTokens: 1, CompletionTokens: 3, TotalTokens: 4})
	if got.String() != "a b c" {
		t.Errorf("emitted %q, want \"a b c\"", got.String())
	}
}

func TestStreamStopsWhenEmitFails(t *testing.T) {
	t.Parallel()
	// A long, slow reply: the fake is still writing when the client leaves.
	fake := ollamatest.NewServer(t, ollamatest.Config{
		Reply: strings.Repeat("word ", 200),
		Delay: 5 * time.Millisecond,
	})
	p := newProvider(t, fake.URL())

	errStop := errors.New("producer went away")
	calls := 0
	resp, err := p.Stream(context.Background(), &schema.Request{Messages: []schema.Message{user("talk")}},
		func(schema.ChunkChoice) error {
			calls++
			return errStop
		})
	if !errors.Is(err, errStop) {
		t.Fatalf("Stream error = %v, want the emit error", err)
	}
	if resp != nil {
		t.Errorf("response = %+v, want nil", resp)
	}
	if calls != 1 {
		t.Errorf("emit called %d times, want 1", calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.Disconnected == 1 }); err != nil {
		t.Fatalf("the fake did not see the connection close: %v", err)
	}
	if s := fake.Stats(); s.Served != 0 {
		t.Errorf("fake served %d replies to the end, want 0", s.Served)
	}
}

func TestRejectsRequestsOllamaCannotTake(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	p := newProvider(t, fake.URL())

	for name, req := range map[string]*schema.Request{
		"no messages":  {},
		"unknown role": {Messages: []schema.Message{msg("function", "x")}},
	} {
		_, err := p.Complete(context.Background(), req)
		if schema.CodeOf(err) != schema.CodeBadRequest {
			t.Errorf("%s: Complete error = %v, want bad_request", name, err)
		}
		_, err = p.Stream(context.Background(), req, func(schema.ChunkChoice) error { return nil })
		if schema.CodeOf(err) != schema.CodeBadRequest {
			t.Errorf("%s: Stream error = %v, want bad_request", name, err)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("fake received %d requests, want none", n)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    provider.Options
		want string // in the error
	}{
		{"no model", provider.Options{}, "Model"},
		{"no scheme", provider.Options{Model: "m", APIBase: "localhost:11434"}, "APIBase"},
		{"openai path", provider.Options{Model: "m", APIBase: "http://h:11434/v1"}, "host root"},
		{"api path", provider.Options{Model: "m", APIBase: "http://h:11434/api/"}, "host root"},
		{"query", provider.Options{Model: "m", APIBase: "http://h:11434?x=1"}, "query"},
	} {
		_, err := ollama.New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New error = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}

	client := provider.NewHTTPClient()
	t.Cleanup(client.CloseIdleConnections)
	for base, host := range map[string]string{
		"":                                  ollama.DefaultAPIBase,
		"http://gpu-1:11434/":               "http://gpu-1:11434",
		"https://user:pass@proxy/ollama":    "https://proxy/ollama",
		"http://127.0.0.1:11434":            "http://127.0.0.1:11434",
		"https://ollama.internal:443/gpu-2": "https://ollama.internal:443/gpu-2",
	} {
		p, err := ollama.New(provider.Options{Model: "m", APIBase: base, HTTP: client})
		if err != nil {
			t.Errorf("New(%q): %v", base, err)
			continue
		}
		if p.Host() != host {
			t.Errorf("New(%q).Host() = %q, want %q", base, p.Host(), host)
		}
	}
}

// newProviderFor builds an adapter for model at base.
func newProviderFor(t *testing.T, base, model string) *ollama.Provider {
	t.Helper()
	return newProvider(t, base, func(o *provider.Options) { o.Model = model })
}
