package anthropic_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
)

// wantTooLarge asserts err is a non-retryable payload_too_large naming
// what and the cap.
func wantTooLarge(t *testing.T, err error, what string, limit int) {
	t.Helper()
	var e *schema.Error
	if !errors.As(err, &e) || e.Code != schema.CodePayloadTooLarge {
		t.Fatalf("error %v, want payload_too_large", err)
	}
	if e.Retryable() || !strings.Contains(e.Message, what+" over "+strconv.Itoa(limit)+" bytes") {
		t.Errorf("error %+v: want a non-retryable one naming the cap", e)
	}
}

// Issue 10 finding 9: a stream was not capped. The cap is lowered so the
// test stays light; the OpenAI adapter's tests run at the default.
func TestStream_Endless_EndsPayloadTooLargeAtTheCap(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	fake := anthropictest.NewServer(t, anthropictest.Config{Key: testKey, Reply: strings.Repeat("y", 4<<10), FailMidStream: anthropictest.FaultEndless})
	p := newProvider(t, fake, func(o *provider.Options) { o.MaxStreamBytes = limit })
	total := 0
	_, err := p.Stream(context.Background(), &schema.Request{Messages: msgs(schema.RoleUser, "x")}, func(c schema.ChunkChoice) error {
		d := c.Delta.Content
		total += len(d)
		if total > 100*limit {
			return errors.New("the stream grew far past the cap")
		}
		return nil
	})
	wantTooLarge(t, err, "stream", limit)
	if total > limit {
		t.Errorf("emitted %d bytes, over the cap of %d", total, limit)
	}
}

// Issue 10 finding 9: a reply over the cap was a connection_error (the
// decoder met the cut-off end) and retried.
func TestComplete_ReplyOverCap_PayloadTooLargeNotRetryable(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	fake := anthropictest.NewServer(t, anthropictest.Config{Key: testKey, Reply: strings.Repeat("z", 2*limit)})
	p := newProvider(t, fake, func(o *provider.Options) { o.MaxReplyBytes = limit })
	_, err := p.Complete(context.Background(), &schema.Request{Messages: msgs(schema.RoleUser, "x")})
	wantTooLarge(t, err, "reply", limit)
}
