package gemini_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

// Issue 10 finding 9: a stream was not capped. The cap is lowered so the
// test stays light; the OpenAI adapter's tests run at the default.
func TestStream_Endless_EndsPayloadTooLargeAtTheCap(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	srv := geminitest.NewServer(t, geminitest.Config{Reply: strings.Repeat("y", 4<<10), FailMidStream: &geminitest.MidStream{Endless: true}})
	p := newProvider(t, srv, func(o *provider.Options) { o.MaxStreamBytes = limit })
	total := 0
	_, err := p.Stream(context.Background(), userRequest("x"), func(c schema.ChunkChoice) error {
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
// decoder met the cut-off end) and retried.
func TestComplete_ReplyOverCap_PayloadTooLargeNotRetryable(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	srv := geminitest.NewServer(t, geminitest.Config{Reply: strings.Repeat("z", 2*limit)})
	p := newProvider(t, srv, func(o *provider.Options) { o.MaxReplyBytes = limit })
	_, err := p.Complete(context.Background(), userRequest("x"))
	e := wantCode(t, err, schema.CodePayloadTooLarge)
	if e.Retryable() || !strings.Contains(e.Message, "reply over "+strconv.Itoa(limit)+" bytes") {
		t.Errorf("error %+v: want a non-retryable one naming the cap", e)
	}
}
