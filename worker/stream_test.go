package worker_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/sim"
)

// inbox is a producer's inbox for a streamed job sent straight to a worker.
type inbox struct {
	sub *nats.Subscription
	ch  chan *nats.Msg
}

// stream sends req, streamed, to w as a dispatcher would forward it.
func (e *env) stream(w *worker.Worker, req *schema.Request, hdr ...string) *inbox {
	e.t.Helper()
	r := *req
	r.Stream = true
	in := &inbox{ch: make(chan *nats.Msg, 1024)}
	subject := e.nc.NewInbox()
	var err error
	if in.sub, err = e.nc.ChanSubscribe(subject, in.ch); err != nil {
		e.t.Fatal(err)
	}
	m := job(e.t, w, &r, hdr...)
	m.Reply = subject
	if err := e.nc.PublishMsg(m); err != nil {
		e.t.Fatal(err)
	}
	return in
}

func (in *inbox) next(t *testing.T) *nats.Msg {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(wait):
		t.Fatal("no stream message")
	}
	return nil
}

// collect reads the stream to its end message, checking Llmq-Seq counts
// 1, 2, 3...
func (in *inbox) collect(t *testing.T) []*nats.Msg {
	t.Helper()
	var out []*nats.Msg
	for {
		m := in.next(t)
		out = append(out, m)
		if got := m.Header.Get(worker.HeaderSeq); got != strconv.Itoa(len(out)) {
			t.Fatalf("message %d has %s %q", len(out), worker.HeaderSeq, got)
		}
		if m.Header.Get(schema.HeaderStream) == schema.StreamEnd {
			return out
		}
	}
}

func decodeChunk(t *testing.T, m *nats.Msg) *schema.Chunk {
	t.Helper()
	if broker.IsError(m) {
		t.Fatalf("stream message is an error: %s", m.Header.Get(schema.HeaderErrorMessage))
	}
	c := new(schema.Chunk)
	if err := broker.CodecOf(m).Unmarshal(m.Data, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWorker_Stream_ChunksArriveInOrderThenEnd(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p, err := sim.New(sim.Config{Tokens: 6, TTFT: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := e.worker(p)
	msgs := e.stream(w, ask("alpha beta gamma"), schema.HeaderDispatcher, "d-test", schema.HeaderAttempt, "1").collect(t)
	if len(msgs) != 7 {
		t.Fatalf("%d messages, want 6 chunks and the end", len(msgs))
	}
	var b strings.Builder
	var id string
	for i, m := range msgs[:6] {
		if m.Reply == "" {
			t.Errorf("chunk %d has no reply subject to cancel on", i+1)
		}
		c := decodeChunk(t, m)
		if c.Object != schema.ObjectChunk || c.Model != modelName || len(c.Choices) != 1 || c.Choices[0].FinishReason != nil {
			t.Fatalf("chunk %d: %+v", i+1, c)
		}
		if id == "" {
			id = c.ID
		} else if c.ID != id {
			t.Errorf("chunk %d id %q, first was %q", i+1, c.ID, id)
		}
		if role := c.Choices[0].Delta.Role; (i == 0) != (role == schema.RoleAssistant) {
			t.Errorf("chunk %d role %q: only the first says assistant", i+1, role)
		}
		b.WriteString(c.Choices[0].Delta.Content)
	}
	if got, want := b.String(), "alpha beta gamma alpha beta gamma"; got != want {
		t.Errorf("deltas make %q, want %q", got, want)
	}
	last := decodeChunk(t, msgs[6])
	if last.ID != id || len(last.Choices) != 1 || last.Choices[0].FinishReason == nil || *last.Choices[0].FinishReason != schema.FinishStop || last.Choices[0].Delta.Content != "" {
		t.Fatalf("end chunk %+v", last)
	}
	if u := last.Usage; u == nil || u.PromptTokens != 3 || u.CompletionTokens != 6 || u.TotalTokens != 9 {
		t.Errorf("usage %+v", last.Usage)
	}
	r := last.Routing
	if r == nil || r.Tier != tier || r.Worker != w.ID() || r.Dispatcher != "d-test" || r.Provider != provName || r.Model != modelName || r.Attempts != 1 {
		t.Fatalf("routing %+v", r)
	}
	if r.TTFTMs < 2 || r.CallMs < r.TTFTMs {
		t.Errorf("ttft %vms call %vms; want ttft at least the sim's 2ms and the call no shorter", r.TTFTMs, r.CallMs)
	}
	awaitHeartbeat(t, w, "one completed job", func(hb schema.Heartbeat) bool { return hb.Completed == 1 && hb.Samples == 1 })
}

func TestWorker_Stream_ThroughDispatcherAndClient_ChunksThenEnd(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher()
	p, err := sim.New(sim.Config{Tokens: 5, TTFT: time.Millisecond, TokensPerSecond: 2000})
	if err != nil {
		t.Fatal(err)
	}
	w := e.worker(p, func(c *worker.Config) { c.ProviderName = "sim" })
	waitWorkers(t, d, 1)
	s, err := e.client().Stream(context.Background(), tier, ask("one two"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b strings.Builder
	var last *schema.Chunk
	n := 0
	for c, err := range s.All() {
		if err != nil {
			t.Fatalf("after %d chunks: %v", n, err)
		}
		n++
		if n == 1 && c.Choices[0].Delta.Role != schema.RoleAssistant {
			t.Errorf("first chunk role %q", c.Choices[0].Delta.Role)
		}
		if c.Routing != nil {
			last = c
			break
		}
		b.WriteString(c.Choices[0].Delta.Content)
	}
	if got, want := b.String(), "one two one two one"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if n != 6 || last == nil {
		t.Fatalf("%d messages, want 5 chunks and the end", n)
	}
	if *last.Choices[0].FinishReason != schema.FinishStop || last.Usage.TotalTokens != 7 {
		t.Errorf("end chunk finish %q usage %+v", *last.Choices[0].FinishReason, last.Usage)
	}
	if r := last.Routing; r.Dispatcher != d.ID() || r.Worker != w.ID() || r.Provider != "sim" || r.TTFTMs <= 0 {
		t.Errorf("routing %+v", r)
	}
}

func TestWorker_Stream_ProviderErrorMidStream_ClientGetsTypedErrorEndingStream(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher()
	w := e.worker(streamFunc(func(_ context.Context, _ *schema.Request, emit provider.Emit) (*schema.Response, error) {
		for _, s := range []string{"a", "b"} {
			if err := emit(provider.Text(s)); err != nil {
				return nil, err
			}
		}
		pe := schema.NewError(schema.CodeProviderError, "upstream: HTTP 500: broke mid-stream")
		pe.ProviderStatus = 500
		return nil, pe
	}))
	waitWorkers(t, d, 1)
	s, err := e.client().Stream(context.Background(), tier, ask("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	for {
		c, last, err := s.Next()
		if err != nil {
			var se *schema.Error
			if !errors.As(err, &se) || se.Code != schema.CodeProviderError || se.ProviderStatus != 500 || !last {
				t.Fatalf("stream error %v (last %v), want provider_error from upstream 500 ending the stream", err, last)
			}
			break
		}
		if last {
			t.Fatal("stream ended normally, want the provider's error")
		}
		got = append(got, c.Choices[0].Delta.Content)
	}
	if strings.Join(got, "") != "ab" {
		t.Errorf("chunks before the error %q, want a, b", got)
	}
	if _, _, err := s.Next(); err == nil {
		t.Error("Next after the error returned no error")
	}
	awaitHeartbeat(t, w, "one failed job", func(hb schema.Heartbeat) bool { return hb.Failed == 1 && hb.InFlight == 0 })
}

// holdStream is a streamer that emits "first", then waits for its ctx to
// end (or for the test to give up) and reports how it ended.
func holdStream(ended chan<- error) streamFunc {
	return func(ctx context.Context, _ *schema.Request, emit provider.Emit) (*schema.Response, error) {
		if err := emit(provider.Text("first")); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			ended <- ctx.Err()
			return nil, provider.TransportError(ctx, ctx.Err())
		case <-time.After(wait):
			ended <- errors.New("never cancelled")
			return text("first", 1, 1), nil
		}
	}
}

func awaitEnd(t *testing.T, ended <-chan error) error {
	t.Helper()
	select {
	case err := <-ended:
		return err
	case <-time.After(wait + time.Second):
		t.Fatal("the stream's provider call never ended")
	}
	return nil
}

func TestWorker_Stream_ClientClosesEarly_ProviderCtxCancelled(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher()
	ended := make(chan error, 1)
	w := e.worker(holdStream(ended))
	waitWorkers(t, d, 1)
	// The job's deadline is far off, so only the Close can end the call
	// within the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
	defer cancel()
	s, err := e.client().Stream(ctx, tier, ask("x"))
	if err != nil {
		t.Fatal(err)
	}
	c, last, err := s.Next()
	if err != nil || last || c.Choices[0].Delta.Content != "first" {
		t.Fatalf("first chunk %+v last %v err %v", c, last, err)
	}
	s.Close()
	if err := awaitEnd(t, ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("provider call ended with %v, want its ctx cancelled", err)
	}
	hb := awaitHeartbeat(t, w, "the stream counted failed", func(hb schema.Heartbeat) bool { return hb.Failed == 1 && hb.InFlight == 0 })
	if hb.Completed != 0 {
		t.Fatalf("completed %d, want 0", hb.Completed)
	}
}

func TestWorker_Stream_ProducerInboxGone_WorkerCancels(t *testing.T) {
	t.Parallel()
	e := setup(t)
	next := make(chan struct{})
	ended := make(chan error, 1)
	w := e.worker(streamFunc(func(ctx context.Context, _ *schema.Request, emit provider.Emit) (*schema.Response, error) {
		if err := emit(provider.Text("first")); err != nil {
			return nil, err
		}
		select {
		case <-next:
		case <-ctx.Done():
		}
		// Publishing to an inbox nobody listens on draws NATS's "no
		// responders" to the chunk's reply subject.
		_ = emit(provider.Text("second"))
		select {
		case <-ctx.Done():
			ended <- ctx.Err()
			return nil, provider.TransportError(ctx, ctx.Err())
		case <-time.After(wait):
			ended <- errors.New("never cancelled")
			return text("first second", 1, 2), nil
		}
	}))
	in := e.stream(w, ask("x"), schema.HeaderDeadline, deadlineIn(3*wait))
	if c := decodeChunk(t, in.next(t)); c.Choices[0].Delta.Content != "first" {
		t.Fatalf("first chunk %+v", c)
	}
	// The producer goes away without a word.
	if err := in.sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	close(next)
	if err := awaitEnd(t, ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("provider call ended with %v, want its ctx cancelled", err)
	}
	hb := awaitHeartbeat(t, w, "the stream counted failed", func(hb schema.Heartbeat) bool { return hb.Failed == 1 && hb.InFlight == 0 })
	if hb.Completed != 0 {
		t.Fatalf("completed %d, want 0", hb.Completed)
	}
}

func TestWorker_Stream_NonStreamerProvider_SendsWholeTextAsOneChunkThenEnd(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher()
	p := &echo{}
	e.worker(provider.Func(p.Complete))
	waitWorkers(t, d, 1)
	s, err := e.client().Stream(context.Background(), tier, ask("hello there"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var chunks []*schema.Chunk
	for c, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
	}
	if len(chunks) != 2 {
		t.Fatalf("%d messages, want one chunk and the end", len(chunks))
	}
	if d := chunks[0].Choices[0].Delta; d.Content != "echo: hello there" || d.Role != schema.RoleAssistant {
		t.Errorf("chunk %+v", d)
	}
	end := chunks[1]
	if end.Choices[0].FinishReason == nil || *end.Choices[0].FinishReason != schema.FinishStop || end.Usage == nil || end.Usage.TotalTokens != 3 || end.Routing == nil {
		t.Errorf("end %+v", end)
	}
}

// endError reads a stream to its end and returns the typed error the end
// message carries.
func endError(t *testing.T, in *inbox) *schema.Error {
	t.Helper()
	msgs := in.collect(t)
	end := msgs[len(msgs)-1]
	return decodeError(t, end)
}

// lateStream emits "first", waits for its ctx to end, then emits again and
// returns emit's error, as the Streamer contract asks of a provider whose
// emit fails (one that had a token buffered when its ctx ended does this).
func lateStream(ended chan<- error) streamFunc {
	return func(ctx context.Context, _ *schema.Request, emit provider.Emit) (*schema.Response, error) {
		if err := emit(provider.Text("first")); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			ended <- ctx.Err()
		case <-time.After(wait):
			ended <- errors.New("never cancelled")
		}
		if err := emit(provider.Text("late")); err != nil {
			return nil, err
		}
		return text("first late", 1, 2), nil
	}
}

func TestWorker_Stream_DeadlinePassesMidStream_EndsWithTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ended := make(chan error, 1)
	w := e.worker(lateStream(ended))
	in := e.stream(w, ask("x"), schema.HeaderDeadline, deadlineIn(200*time.Millisecond))
	if se := endError(t, in); se.Code != schema.CodeTimeout {
		t.Fatalf("stream ended with %+v, want timeout", se)
	}
	if err := awaitEnd(t, ended); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("provider ctx ended with %v", err)
	}
}

func TestWorker_Stream_StopCtxEnds_ProducerGetsTypedErrorEndingStream(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ended := make(chan error, 2)
	w := e.worker(lateStream(ended), func(c *worker.Config) { c.Concurrency = 2 })
	a := e.stream(w, ask("a"), schema.HeaderDeadline, deadlineIn(3*wait))
	b := e.stream(w, ask("b"), schema.HeaderDeadline, deadlineIn(3*wait))
	// Both calls are running once their first chunk is out.
	a.next(t)
	b.next(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop: %v, want the ctx's error", err)
	}
	for name, in := range map[string]*inbox{"a": a, "b": b} {
		var end *nats.Msg
		for {
			end = in.next(t)
			if end.Header.Get(schema.HeaderStream) == schema.StreamEnd {
				break
			}
		}
		if end.Header.Get(worker.HeaderSeq) != "2" {
			t.Errorf("stream %s: end is message %s, want 2", name, end.Header.Get(worker.HeaderSeq))
		}
		if se := decodeError(t, end); se.Code != schema.CodeCancelled {
			t.Errorf("stream %s ended with %+v, want cancelled", name, se)
		}
	}
}

func TestWorker_StreamTimeout_BoundsAStreamedCall(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ended := make(chan error, 1)
	w := e.worker(holdStream(ended), func(c *worker.Config) { c.StreamTimeout = 200 * time.Millisecond })
	in := e.stream(w, ask("x"), schema.HeaderDeadline, deadlineIn(3*wait))
	if se := endError(t, in); se.Code != schema.CodeTimeout {
		t.Fatalf("stream ended with %+v, want timeout", se)
	}
	if err := awaitEnd(t, ended); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("provider ctx ended with %v", err)
	}
}
