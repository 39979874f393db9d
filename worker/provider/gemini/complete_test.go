package gemini_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	const key = "AIza-secret-new"
	cases := []struct {
		name   string
		opts   provider.Options
		option string
	}{
		{"no model", provider.Options{APIKey: key}, "Model"},
		{"model with path", provider.Options{Model: "a/b", APIKey: key}, "Model"},
		{"no key", provider.Options{Model: testModel}, "APIKey"},
		{"bad base", provider.Options{Model: testModel, APIKey: key, APIBase: "ftp://x"}, "APIBase"},
		{"base with query", provider.Options{Model: testModel, APIKey: key, APIBase: "http://x/?key=" + key}, "APIBase"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := gemini.New(tc.opts)
			if err == nil {
				t.Fatal("New accepted invalid options")
			}
			if !strings.Contains(err.Error(), tc.option) {
				t.Errorf("error %q does not name option %s", err, tc.option)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error %q leaks the key", err)
			}
		})
	}
}

func TestNewAcceptsModelsPrefixAndVersionSuffix(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	p := newProvider(t, srv, func(o *provider.Options) {
		o.Model = "models/" + testModel
		o.APIBase = srv.URL() + "/v1beta/"
	})
	if _, err := p.Complete(context.Background(), userRequest("hi")); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.Requests()[0].Path, "/v1beta/models/"+testModel+":generateContent"; got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
}

func TestCompletePlain(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	p := newProvider(t, srv)

	resp, err := p.Complete(context.Background(), userRequest("hello there world"))
	if err != nil {
		t.Fatal(err)
	}

	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v1beta/models/gemini-2.0-flash:generateContent" || len(r.Query) != 0 {
		t.Errorf("sent %s %s?%s", r.Method, r.Path, r.Query.Encode())
	}
	if got := r.Header.Get("X-Goog-Api-Key"); got != srv.Key() {
		t.Errorf("x-goog-api-key = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("content-type = %q", got)
	}
	if r.Header.Get("Authorization") != "" {
		t.Error("sent an Authorization header")
	}
	want := &geminitest.Request{Contents: []geminitest.Content{
		{Role: "user", Parts: []geminitest.Part{{Text: "hello there world"}}},
	}}
	if !reflect.DeepEqual(r.Body, want) {
		t.Errorf("body = %+v\nwant %+v\nraw %s", r.Body, want, r.Raw)
	}

	wantResp := &schema.Response{
		ID:    "fake-1",
		Model: testModel,
		Choices: []schema.Choice{{
			Message:      schema.Message{Role: "assistant", Content: "echo: hello there world"},
			FinishReason: schema.FinishStop,
		}},
		Usage: schema.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7},
	}
	if !reflect.DeepEqual(resp, wantResp) {
		t.Errorf("response = %+v\nwant %+v", resp, wantResp)
	}
}

func TestCompleteReportsModelVersion(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{ModelVersion: "gemini-2.0-flash-001", Reply: "ok"})
	resp, err := newProvider(t, srv).Complete(context.Background(), userRequest("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "gemini-2.0-flash-001" || resp.Text() != "ok" {
		t.Errorf("model %q text %q", resp.Model, resp.Text())
	}
}

func TestSystemPrompt(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := &schema.Request{Messages: []schema.Message{
		{Role: schema.RoleSystem, Content: "You are terse."},
		{Role: schema.RoleDeveloper, Content: "Answer in French."},
		{Role: schema.RoleUser, Content: "hi"},
	}}
	resp, err := newProvider(t, srv).Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Requests()[0].Body
	want := &geminitest.Request{
		Contents: []geminitest.Content{{Role: "user", Parts: []geminitest.Part{{Text: "hi"}}}},
		SystemInstruction: &geminitest.Content{Parts: []geminitest.Part{
			{Text: "You are terse."}, {Text: "Answer in French."},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body = %+v\nwant %+v", got, want)
	}
	// The fake counts system words as prompt tokens: 3 + 3 + 1.
	if resp.Usage.PromptTokens != 7 {
		t.Errorf("prompt tokens = %d, want 7", resp.Usage.PromptTokens)
	}
}

func TestMultiTurn(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := &schema.Request{Messages: []schema.Message{
		{Role: schema.RoleUser, Content: "one"},
		{Role: schema.RoleAssistant, Content: "two"},
		{Role: schema.RoleAssistant, Content: ""}, // dropped: Gemini refuses empty parts
		{Role: schema.RoleSystem, Content: "be nice"},
		{Role: schema.RoleUser, Content: "three"},
		{Role: schema.RoleUser, Content: "four"},
	}}
	resp, err := newProvider(t, srv).Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := &geminitest.Request{
		Contents: []geminitest.Content{
			{Role: "user", Parts: []geminitest.Part{{Text: "one"}}},
			{Role: "model", Parts: []geminitest.Part{{Text: "two"}}},
			{Role: "user", Parts: []geminitest.Part{{Text: "three"}, {Text: "four"}}},
		},
		SystemInstruction: &geminitest.Content{Parts: []geminitest.Part{{Text: "be nice"}}},
	}
	if got := srv.Requests()[0].Body; !reflect.DeepEqual(got, want) {
		t.Errorf("body = %+v\nwant %+v", got, want)
	}
	if resp.Text() != "echo: three four" {
		t.Errorf("text = %q", resp.Text())
	}
}

func TestNoConversationIsBadRequest(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := &schema.Request{Messages: []schema.Message{{Role: schema.RoleSystem, Content: "only a system prompt"}}}
	_, err := newProvider(t, srv).Complete(context.Background(), req)
	wantCode(t, err, schema.CodeBadRequest)
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("adapter called the API (%d requests) for a request it cannot map", n)
	}
}

func TestParameters(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Reply: "alpha beta gamma delta STOP epsilon"})
	p := newProvider(t, srv)

	req := userRequest("go")
	req.MaxTokens = ptr(3)
	req.MaxCompletionTokens = ptr(99) // MaxTokens wins
	req.Temperature = ptr(0.3)
	req.TopP = ptr(0.9)
	req.Stop = schema.StopList{"STOP", "never"}
	req.User = "someone"
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := &geminitest.GenerationConfig{
		MaxOutputTokens: ptr(3),
		Temperature:     ptr(0.3),
		TopP:            ptr(0.9),
		StopSequences:   []string{"STOP", "never"},
	}
	if got := srv.Requests()[0].Body.GenerationConfig; !reflect.DeepEqual(got, want) {
		t.Errorf("generationConfig = %+v, want %+v", got, want)
	}
	if resp.Text() != "alpha beta gamma" || resp.Choices[0].FinishReason != schema.FinishLength {
		t.Errorf("got %q finish %q, want a reply cut at 3 words with finish length", resp.Text(), resp.Choices[0].FinishReason)
	}
	if resp.Usage.CompletionTokens != 3 || resp.Usage.TotalTokens != 4 {
		t.Errorf("usage = %+v", resp.Usage)
	}

	// max_completion_tokens is used when max_tokens is absent; a stop
	// sequence ends the reply with finish stop.
	req = userRequest("go")
	req.MaxCompletionTokens = ptr(10)
	req.Stop = schema.StopList{"STOP"}
	resp, err = p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests()[1].Body.GenerationConfig; *got.MaxOutputTokens != 10 || got.Temperature != nil || got.TopP != nil {
		t.Errorf("generationConfig = %+v", got)
	}
	if resp.Text() != "alpha beta gamma delta" || resp.Choices[0].FinishReason != schema.FinishStop {
		t.Errorf("got %q finish %q", resp.Text(), resp.Choices[0].FinishReason)
	}
}

func TestFinishReasons(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"STOP":                      schema.FinishStop,
		"MAX_TOKENS":                schema.FinishLength,
		"SAFETY":                    schema.FinishContentFilter,
		"RECITATION":                schema.FinishContentFilter,
		"BLOCKLIST":                 schema.FinishContentFilter,
		"PROHIBITED_CONTENT":        schema.FinishContentFilter,
		"SPII":                      schema.FinishContentFilter,
		"LANGUAGE":                  schema.FinishStop,
		"OTHER":                     schema.FinishStop,
		"MALFORMED_FUNCTION_CALL":   schema.FinishStop,
		"FINISH_REASON_UNSPECIFIED": schema.FinishStop,
	}
	for reason, want := range cases {
		t.Run(reason, func(t *testing.T) {
			t.Parallel()
			srv := geminitest.NewServer(t, geminitest.Config{FinishReason: reason})
			p := newProvider(t, srv)
			resp, err := p.Complete(context.Background(), userRequest("x"))
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Choices[0].FinishReason; got != want {
				t.Errorf("Complete: finish = %q, want %q", got, want)
			}
			_, resp, err = collect(t, p, userRequest("x"))
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Choices[0].FinishReason; got != want {
				t.Errorf("Stream: finish = %q, want %q", got, want)
			}
		})
	}
}

func TestBlockedPromptIsContentPolicy(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{BlockReason: "SAFETY"})
	p := newProvider(t, srv)
	_, err := p.Complete(context.Background(), userRequest("something bad"))
	e := wantCode(t, err, schema.CodeContentPolicy)
	if !strings.Contains(e.Message, "gemini") || !strings.Contains(e.Message, "SAFETY") {
		t.Errorf("message %q should name the provider and the block reason", e.Message)
	}
	deltas, _, err := collect(t, p, userRequest("something bad"))
	wantCode(t, err, schema.CodeContentPolicy)
	if len(deltas) != 0 {
		t.Errorf("emitted %q for a blocked prompt", deltas)
	}
}
