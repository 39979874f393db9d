package ollama_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// wantCode asserts err is a *schema.Error with code and returns it.
func wantCode(t *testing.T, err error, code string) *schema.Error {
	t.Helper()
	var e *schema.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	return e
}

// Issue 10 finding 9: a stream was not capped (hundreds of MB kept in
// memory). The cap is lowered here so the test stays light; the OpenAI
// adapter's tests run at the default.
func TestStream_Endless_EndsPayloadTooLargeAtTheCap(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: strings.Repeat("y", 4<<10), FailMidStream: &ollamatest.MidStream{Endless: true}})
	const limit = 1 << 20
	p := newProvider(t, fake.URL(), func(o *provider.Options) { o.MaxStreamBytes = limit })
	total := 0
	_, err := p.Stream(context.Background(), &schema.Request{Messages: []schema.Message{user("x")}}, func(c schema.ChunkChoice) error {
		d := c.Delta.Content
		total += len(d)
		if total > 100*limit {
			return errors.New("the stream grew far past the cap")
		}
		return nil
	})
	e := wantCode(t, err, schema.CodePayloadTooLarge)
	if e.Retryable() || !strings.Contains(e.Message, "stream over "+strconv.Itoa(limit)+" bytes") {
		t.Errorf("error %+v: want a non-retryable one naming the cap", e)
	}
	if total > limit {
		t.Errorf("emitted %d bytes, over the cap of %d", total, limit)
	}
}

// Issue 10 finding 9: a reply over the cap was a connection_error (the
// decoder met the cut-off end), retried and downloaded again.
func TestComplete_ReplyOverCap_PayloadTooLargeNotRetryable(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: strings.Repeat("z", 2*limit)})
	p := newProvider(t, fake.URL(), func(o *provider.Options) { o.MaxReplyBytes = limit })
	_, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("x")}})
	e := wantCode(t, err, schema.CodePayloadTooLarge)
	if e.Retryable() || !strings.Contains(e.Message, "reply over "+strconv.Itoa(limit)+" bytes") {
		t.Errorf("error %+v: want a non-retryable one naming the cap", e)
	}
}

// Issue 10 finding 9: a stream trickling in until stream_timeout ended as
// provider_error (the cut line was taken for a malformed one); the
// time-out is what ended it.
func TestStream_TrickleUntilStreamTimeout_EndsTimeout(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "slow words", FailMidStream: &ollamatest.MidStream{After: 1, Trickle: 2 * time.Millisecond}})
	p := newProvider(t, fake.URL(), func(o *provider.Options) { o.StreamTimeout = 300 * time.Millisecond })
	var deltas []string
	_, err := p.Stream(context.Background(), &schema.Request{Messages: []schema.Message{user("x")}}, func(c schema.ChunkChoice) error {
		d := c.Delta.Content
		deltas = append(deltas, d)
		return nil
	})
	wantCode(t, err, schema.CodeTimeout)
	if len(deltas) == 0 {
		t.Error("no content before the trickle: the test did not reach the trickle")
	}
}
