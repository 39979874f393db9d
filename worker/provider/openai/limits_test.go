package openai_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// limit is the cap the tests set: far below the defaults
// (provider.MaxReplyBytes, provider.MaxStreamBytes), so that they stay
// light under -race on a loaded machine.
const limit = 1 << 20

// Issue 10 finding 9: a non-streamed reply was capped but a stream could
// grow to hundreds of MB in memory.
func TestStream_Endless_EndsPayloadTooLargeAtTheCap(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Reply: strings.Repeat("y", 4<<10), StreamFault: &openaitest.StreamFault{Endless: true}},
		func(o *provider.Options) { o.MaxStreamBytes = limit })
	total := 0
	_, err := p.Stream(context.Background(), userRequest("x"), func(c schema.ChunkChoice) error {
		d := c.Delta.Content
		total += len(d)
		if total > 100*limit {
			return errors.New("the stream grew far past the cap")
		}
		return nil
	})
	e := wantError(t, err, schema.CodePayloadTooLarge)
	if e.Retryable() || !strings.Contains(e.Message, "stream over "+strconv.Itoa(limit)+" bytes") {
		t.Errorf("error %+v: want a non-retryable one naming the cap", e)
	}
	if total > limit {
		t.Errorf("emitted %d bytes of content, over the cap of %d", total, limit)
	}
	waitFor(t, srv.Disconnected(), "the adapter to hang up")
}

// Issue 10 finding 9: a reply over the cap was taken for a cut one
// (connection_error, or a malformed reply: provider_error) and retried,
// downloading it again.
func TestComplete_ReplyOverCap_PayloadTooLargeNotRetryable(t *testing.T) {
	t.Parallel()
	p, _ := setup(t, openaitest.Config{Reply: strings.Repeat("z", 2*limit)}, func(o *provider.Options) { o.MaxReplyBytes = limit })
	_, err := p.Complete(context.Background(), userRequest("x"))
	e := wantError(t, err, schema.CodePayloadTooLarge)
	if e.Retryable() || !strings.Contains(e.Message, "reply over "+strconv.Itoa(limit)+" bytes") {
		t.Errorf("error %+v: want a non-retryable one saying the reply is over the cap", e)
	}
}

// Issue 10 finding 9: a stream trickling in until its stream_timeout ended
// as provider_error; the time-out is what ended it.
func TestStream_TrickleUntilStreamTimeout_EndsTimeout(t *testing.T) {
	t.Parallel()
	p, _ := setup(t, openaitest.Config{Reply: "slow words", StreamFault: &openaitest.StreamFault{AfterChunks: 1, Trickle: 2 * time.Millisecond}},
		func(o *provider.Options) { o.StreamTimeout = 300 * time.Millisecond })
	var deltas []string
	_, err := p.Stream(context.Background(), userRequest("x"), collect(&deltas))
	wantError(t, err, schema.CodeTimeout)
	if len(deltas) == 0 {
		t.Error("no content before the trickle: the test did not reach the trickle")
	}
}
