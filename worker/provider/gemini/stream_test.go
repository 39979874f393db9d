package gemini_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

func TestStream(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Reply: "the quick  brown fox"})
	p := newProvider(t, srv)

	deltas, resp, err := collect(t, p, userRequest("say it"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"the ", "quick  ", "brown ", "fox"}; !reflect.DeepEqual(deltas, want) {
		t.Errorf("deltas = %q, want %q", deltas, want)
	}
	if got := strings.Join(deltas, ""); resp.Text() != got {
		t.Errorf("final content %q != concatenated deltas %q", resp.Text(), got)
	}
	if resp.Choices[0].FinishReason != schema.FinishStop || resp.Choices[0].Message.Role != schema.RoleAssistant {
		t.Errorf("choice = %+v", resp.Choices[0])
	}
	if want := (schema.Usage{PromptTokens: 2, CompletionTokens: 4, TotalTokens: 6}); resp.Usage != want {
		t.Errorf("usage = %+v, want %+v", resp.Usage, want)
	}
	if resp.ID != "fake-1" || resp.Model != testModel {
		t.Errorf("id %q model %q", resp.ID, resp.Model)
	}

	r := srv.Requests()[0]
	if r.Path != "/v1beta/models/gemini-2.0-flash:streamGenerateContent" || r.Query.Encode() != "alt=sse" {
		t.Errorf("sent %s?%s", r.Path, r.Query.Encode())
	}
	if r.Header.Get("X-Goog-Api-Key") != srv.Key() {
		t.Error("stream call without the key header")
	}
}

func TestStreamLengthAndChunks(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Reply: "a b c d e f g", ChunkWords: 2})
	req := userRequest("x")
	req.MaxTokens = ptr(5)
	deltas, resp, err := collect(t, newProvider(t, srv), req)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a b ", "c d ", "e"}; !reflect.DeepEqual(deltas, want) {
		t.Errorf("deltas = %q, want %q", deltas, want)
	}
	if resp.Choices[0].FinishReason != schema.FinishLength || resp.Usage.CompletionTokens != 5 {
		t.Errorf("finish %q usage %+v", resp.Choices[0].FinishReason, resp.Usage)
	}
}

func TestStreamEmitErrorStops(t *testing.T) {
	t.Parallel()
	// A long reply with a pause per chunk: the fake is still streaming
	// when the adapter gives up.
	srv := geminitest.NewServer(t, geminitest.Config{
		Reply: strings.Repeat("word ", 500),
		Delay: 2 * time.Millisecond,
	})
	p := newProvider(t, srv)
	errStop := errors.New("consumer went away")
	calls := 0
	_, err := p.Stream(context.Background(), userRequest("x"), func(schema.ChunkChoice) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Stream returned %v, want the emit error", err)
	}
	if calls != 1 {
		t.Errorf("emit called %d times after failing", calls)
	}
	select {
	case <-srv.Disconnected():
	case <-time.After(10 * time.Second):
		t.Fatal("the fake never saw the connection close")
	}
}

func TestStreamFailsMidway(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		mid   geminitest.MidStream
		code  string
		retry time.Duration
	}{
		{"error event", geminitest.MidStream{After: 2, Error: geminitest.Internal()}, schema.CodeProviderError, 0},
		{"rate limit event", geminitest.MidStream{After: 2, Error: geminitest.RateLimited("2.5s")}, schema.CodeRateLimited, 2500 * time.Millisecond},
		{"overloaded event", geminitest.MidStream{After: 2, Error: geminitest.Unavailable()}, schema.CodeProviderError, 0},
		{"dropped connection", geminitest.MidStream{After: 2}, schema.CodeConnection, 0},
		{"clean end without finish", geminitest.MidStream{After: 2, Clean: true}, schema.CodeConnection, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := geminitest.NewServer(t, geminitest.Config{Reply: "one two three four five", FailMidStream: &tc.mid})
			deltas, resp, err := collect(t, newProvider(t, srv), userRequest("x"))
			e := wantCode(t, err, tc.code)
			if resp != nil {
				t.Errorf("got a response %+v with the error", resp)
			}
			if want := []string{"one ", "two "}; !reflect.DeepEqual(deltas, want) {
				t.Errorf("deltas before the failure = %q, want %q", deltas, want)
			}
			if e.RetryAfter() != tc.retry {
				t.Errorf("retry after = %v, want %v", e.RetryAfter(), tc.retry)
			}
			if !strings.Contains(e.Message, "gemini") {
				t.Errorf("message %q does not name the provider", e.Message)
			}
		})
	}
}
