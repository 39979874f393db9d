package openai_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

const testKey = "sk-test-0123456789abcdefSECRET"

func TestCompleteSendsRequestAndMapsReply(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Key: testKey, Model: testModel}, nil)

	resp, err := p.Complete(context.Background(), userRequest("hello there"))
	if err != nil {
		t.Fatal(err)
	}

	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake saw %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.Method != "POST" || got.Path != "/v1/chat/completions" {
		t.Errorf("sent %s %s, want POST /v1/chat/completions", got.Method, got.Path)
	}
	if h := got.Header.Get("Authorization"); h != "Bearer "+testKey {
		t.Errorf("Authorization = %q", h)
	}
	if h := got.Header.Get("Content-Type"); h != "application/json" {
		t.Errorf("Content-Type = %q", h)
	}
	wantBody := map[string]any{
		"model":    testModel,
		"messages": []any{map[string]any{"role": "user", "content": "hello there"}},
	}
	if !reflect.DeepEqual(got.Body, wantBody) {
		t.Errorf("body = %s\nwant %v", got.Raw, wantBody)
	}

	want := &schema.Response{
		ID:    resp.ID, // the fake's; checked below
		Model: testModel,
		Choices: []schema.Choice{{
			Message:      schema.Message{Role: "assistant", Content: "echo: hello there"},
			FinishReason: "stop",
		}},
		Usage: schema.Usage{PromptTokens: 2, CompletionTokens: 3, TotalTokens: 5},
	}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("response = %+v\nwant %+v", resp, want)
	}
	if resp.ID == "" || resp.ID[:9] != "chatcmpl-" {
		t.Errorf("ID = %q, want the provider's chatcmpl- id", resp.ID)
	}
}

func TestCompleteConversation(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{}, nil)
	req := &schema.Request{Messages: []schema.Message{
		{Role: schema.RoleSystem, Content: "be brief"},
		{Role: schema.RoleDeveloper, Content: "answer in English"},
		{Role: schema.RoleUser, Content: "first question", Name: "ann"},
		{Role: schema.RoleAssistant, Content: "first answer"},
		{Role: schema.RoleUser, Content: "second question"},
	}}
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantMessages := []any{
		map[string]any{"role": "system", "content": "be brief"},
		map[string]any{"role": "system", "content": "answer in English"},
		map[string]any{"role": "user", "content": "first question", "name": "ann"},
		map[string]any{"role": "assistant", "content": "first answer"},
		map[string]any{"role": "user", "content": "second question"},
	}
	if got := srv.Requests()[0].Body["messages"]; !reflect.DeepEqual(got, wantMessages) {
		t.Errorf("messages = %v\nwant %v", got, wantMessages)
	}
	if resp.Text() != "echo: second question" {
		t.Errorf("text = %q", resp.Text())
	}
	if u := resp.Usage; u.PromptTokens != 11 || u.CompletionTokens != 3 || u.TotalTokens != 14 {
		t.Errorf("usage = %+v", u)
	}
}

func TestCompleteMapsParameters(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Reply: "alpha beta END gamma"}, nil)
	req := userRequest("x")
	req.MaxTokens = intp(50)
	req.MaxCompletionTokens = intp(60) // max_tokens wins; only one is sent
	req.Temperature = floatp(0)        // zero is a value, and is sent
	req.TopP = floatp(0.5)
	req.Stop = schema.StopList{"END", "\n\n"}
	req.User = "user-7"
	req.Metadata = map[string]string{"team": "a"}
	req.Stream = true // Complete never streams

	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"model":       testModel,
		"messages":    []any{map[string]any{"role": "user", "content": "x"}},
		"max_tokens":  50.0,
		"temperature": 0.0,
		"top_p":       0.5,
		"stop":        []any{"END", "\n\n"},
		"user":        "user-7",
	}
	if got := srv.Requests()[0]; !reflect.DeepEqual(got.Body, want) {
		t.Errorf("body = %s\nwant %v", got.Raw, want)
	}
	if resp.Text() != "alpha beta" || resp.Choices[0].FinishReason != schema.FinishStop {
		t.Errorf("got %q / %s, want the reply cut at the stop sequence", resp.Text(), resp.Choices[0].FinishReason)
	}
}

func TestCompleteSendsMaxCompletionTokensWhenOnlyItIsSet(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Reply: "one two three four"}, nil)
	req := userRequest("x")
	req.MaxCompletionTokens = intp(2)
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	body := srv.Requests()[0].Body
	if _, ok := body["max_tokens"]; ok || body["max_completion_tokens"] != 2.0 {
		t.Errorf("body = %v, want max_completion_tokens 2 alone", body)
	}
	if resp.Text() != "one two" || resp.Choices[0].FinishReason != schema.FinishLength {
		t.Errorf("got %q / %s, want the reply truncated with finish length", resp.Text(), resp.Choices[0].FinishReason)
	}
	if resp.Usage.CompletionTokens != 2 || resp.Usage.TotalTokens != 3 {
		t.Errorf("usage = %+v", resp.Usage)
	}
}

func TestCompleteWithoutKeySendsNoAuthorization(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{}, func(o *provider.Options) { o.APIKey = "" })
	if _, err := p.Complete(context.Background(), userRequest("hi")); err != nil {
		t.Fatal(err)
	}
	if h, ok := srv.Requests()[0].Header["Authorization"]; ok {
		t.Errorf("Authorization sent without a key: %q", h)
	}
}

func TestCompleteConcurrentCalls(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{}, nil)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			resp, err := p.Complete(context.Background(), userRequest("call"))
			if err == nil && resp.Text() != "echo: call" {
				err = schema.Errorf(schema.CodeInternal, "call %d: text %q", i, resp.Text())
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := len(srv.Requests()); got != n {
		t.Errorf("fake saw %d requests, want %d", got, n)
	}
}
