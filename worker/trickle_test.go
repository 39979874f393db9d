package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// Issue 10 finding 9: a stream trickling in until the deployment's
// stream_timeout ended as provider_error. It ends as timeout (and, being
// the deployment's own time-out, counts toward a cooldown).
func TestWorker_Stream_TrickleUntilStreamTimeout_EndsTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "slow words", FailMidStream: &ollamatest.MidStream{After: 1, Trickle: 2 * time.Millisecond}})
	hc := provider.NewHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	const streamTimeout = 300 * time.Millisecond
	p, err := ollama.New(provider.Options{Model: ollamatest.DefaultModel, APIBase: fake.URL(), HTTP: hc, StreamTimeout: streamTimeout})
	if err != nil {
		t.Fatal(err)
	}
	w := e.worker(p, func(c *worker.Config) {
		c.StreamTimeout = streamTimeout
		c.Cooldown = worker.Cooldown{AllowedFails: 1, Time: time.Minute}
	})
	in := e.stream(w, ask("x"), schema.HeaderDeadline, deadlineIn(wait))
	if se := endError(t, in); se.Code != schema.CodeTimeout {
		t.Fatalf("stream ended with %+v, want timeout", se)
	}
	if _, reason := w.Cooling(); reason != schema.CodeTimeout {
		t.Fatalf("cooling reason %q: the deployment's own time-out counts", reason)
	}
}

// Whatever an adapter makes of a stream cut by the call's deadline (here
// a malformed chunk), the call ran out of time: the stream ends timeout.
func TestWorker_Stream_AdapterMisreadsDeadlineCut_EndsTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := streamFunc(func(ctx context.Context, _ *schema.Request, emit provider.Emit) (*schema.Response, error) {
		if err := emit(provider.Text("first")); err != nil {
			return nil, err
		}
		<-ctx.Done()
		return nil, schema.NewError(schema.CodeProviderError, "malformed stream line: unexpected end of JSON input")
	})
	w := e.worker(p, func(c *worker.Config) { c.StreamTimeout = 200 * time.Millisecond })
	in := e.stream(w, ask("x"), schema.HeaderDeadline, deadlineIn(wait))
	if se := endError(t, in); se.Code != schema.CodeTimeout {
		t.Fatalf("stream ended with %+v, want timeout", se)
	}
}
