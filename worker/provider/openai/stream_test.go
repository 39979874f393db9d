package openai_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

func TestStreamEmitsDeltasInOrder(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Key: testKey, Reply: "the quick  brown fox"}, nil)
	var deltas []string
	resp, err := p.Stream(context.Background(), userRequest("tell me"), collect(&deltas))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"the", " quick", "  brown", " fox"}; !reflect.DeepEqual(deltas, want) {
		t.Errorf("deltas = %q, want %q", deltas, want)
	}
	if resp.Text() != strings.Join(deltas, "") {
		t.Errorf("content %q is not the deltas joined", resp.Text())
	}
	if resp.Choices[0].FinishReason != schema.FinishStop || resp.Choices[0].Message.Role != schema.RoleAssistant {
		t.Errorf("choice = %+v", resp.Choices[0])
	}
	if u := resp.Usage; u.PromptTokens != 2 || u.CompletionTokens != 4 || u.TotalTokens != 6 {
		t.Errorf("usage = %+v, want 2+4=6 from the include_usage chunk", u)
	}
	if resp.Model != testModel || !strings.HasPrefix(resp.ID, "chatcmpl-") {
		t.Errorf("id/model = %q/%q", resp.ID, resp.Model)
	}
	got := srv.Requests()[0]
	if got.Body["stream"] != true || !reflect.DeepEqual(got.Body["stream_options"], map[string]any{"include_usage": true}) {
		t.Errorf("body = %s, want stream true with include_usage", got.Raw)
	}
	if h := got.Header.Get("Accept"); h != "text/event-stream" {
		t.Errorf("Accept = %q", h)
	}
}

func TestStreamFinishLength(t *testing.T) {
	t.Parallel()
	p, _ := setup(t, openaitest.Config{Reply: "a b c d e"}, nil)
	req := userRequest("x")
	req.MaxTokens = intp(3)
	var deltas []string
	resp, err := p.Stream(context.Background(), req, collect(&deltas))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != "a b c" || len(deltas) != 3 || resp.Choices[0].FinishReason != schema.FinishLength {
		t.Errorf("got %q in %d deltas, finish %s", resp.Text(), len(deltas), resp.Choices[0].FinishReason)
	}
	if resp.Usage.CompletionTokens != 3 {
		t.Errorf("usage = %+v", resp.Usage)
	}
}

func TestStreamStopsWhenEmitFails(t *testing.T) {
	t.Parallel()
	// The fake sends one chunk, then holds the stream open until the
	// client leaves: only closing the connection ends the call.
	p, srv := setup(t, openaitest.Config{Reply: "one two three", StreamFault: &openaitest.StreamFault{AfterChunks: 1, Hang: true}}, nil)
	errStop := errors.New("producer went away")
	calls := 0
	_, err := p.Stream(context.Background(), userRequest("x"), func(schema.ChunkChoice) error {
		calls++
		return errStop
	})
	if err != errStop {
		t.Fatalf("err = %v, want emit's error as is", err)
	}
	if calls != 1 {
		t.Errorf("emit called %d times after failing, want 1", calls)
	}
	waitFor(t, srv.Disconnected(), "the fake to see the connection closed")
}

func TestStreamFailsMidway(t *testing.T) {
	t.Parallel()
	serverErr := openaitest.NewAPIError("The server had an error while processing your request.", "server_error", "", "")
	rateErr := openaitest.NewAPIError("Rate limit reached. Please try again in 750ms.", "requests", "", "rate_limit_exceeded")
	cases := []struct {
		name  string
		fault openaitest.StreamFault
		code  string
	}{
		{"error event", openaitest.StreamFault{AfterChunks: 2, Error: &serverErr}, schema.CodeProviderError},
		{"rate limit event", openaitest.StreamFault{AfterChunks: 2, Error: &rateErr}, schema.CodeRateLimited},
		{"connection dropped", openaitest.StreamFault{AfterChunks: 2, Abort: true}, schema.CodeConnection},
		{"ends without [DONE]", openaitest.StreamFault{AfterChunks: 2}, schema.CodeConnection},
		{"ends after all content without [DONE]", openaitest.StreamFault{AfterChunks: 99}, schema.CodeConnection},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, _ := setup(t, openaitest.Config{Reply: "w1 w2 w3 w4", StreamFault: &c.fault}, nil)
			var deltas []string
			resp, err := p.Stream(context.Background(), userRequest("x"), collect(&deltas))
			e := wantError(t, err, c.code)
			if resp != nil {
				t.Errorf("got a response with the error: %+v", resp)
			}
			if want := min(c.fault.AfterChunks, 4); len(deltas) != want {
				t.Errorf("emitted %d deltas before the failure, want %d", len(deltas), want)
			}
			if !strings.HasPrefix(e.Message, "openai: ") {
				t.Errorf("message %q does not name the provider", e.Message)
			}
			if c.code == schema.CodeRateLimited && e.RetryAfterMs != 750 {
				t.Errorf("retry after = %d ms, want 750 from the message", e.RetryAfterMs)
			}
		})
	}
}
