package client_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

// streamJob starts a stream and returns it with the job the worker saw and
// a control subject the test's worker listens on.
func streamJob(t *testing.T, e *env, ctx context.Context, codec schema.Codec) (*client.Stream, job, *nats.Subscription) {
	t.Helper()
	jobs := e.respond("t", nil)
	control := e.worker.NewRespInbox()
	csub, err := e.worker.SubscribeSync(control)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.worker.Flush(); err != nil {
		t.Fatal(err)
	}
	s, err := e.client(client.Config{Codec: codec}).Stream(ctx, "t", hello())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, e.nextJob(jobs), csub
}

func next(t *testing.T, s *client.Stream) (*schema.Chunk, bool, error) {
	t.Helper()
	type result struct {
		c    *schema.Chunk
		last bool
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, last, err := s.Next()
		done <- result{c, last, err}
	}()
	select {
	case r := <-done:
		return r.c, r.last, r.err
	case <-time.After(wait):
		t.Fatal("Next hangs")
		return nil, false, nil
	}
}

func content(c *schema.Chunk) string {
	if c == nil || len(c.Choices) == 0 {
		return ""
	}
	return c.Choices[0].Delta.Content
}

func TestStreamDeliversChunksInOrder(t *testing.T) {
	t.Parallel()
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		t.Run(codec.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			dl, _ := ctx.Deadline()
			s, j, control := streamJob(t, e, ctx, codec)
			if !j.req.Stream {
				t.Error("job sent without stream set")
			}
			if !strings.HasPrefix(j.msg.Reply, "_INBOX.") {
				t.Errorf("reply subject = %q, want an inbox", j.msg.Reply)
			}
			if got := j.msg.Header.Get(schema.HeaderDeadline); got != strconv.FormatInt(dl.UnixMilli(), 10) {
				t.Errorf("deadline header = %q, want %d", got, dl.UnixMilli())
			}
			for i, text := range []string{"a", "b", "c"} {
				e.chunk(j.msg.Reply, control.Subject, codec, i+1, delta(text), false)
			}
			e.chunk(j.msg.Reply, control.Subject, codec, 4, final(), true)
			var got []string
			for i := 0; i < 3; i++ {
				c, last, err := next(t, s)
				if err != nil || last {
					t.Fatalf("chunk %d: last=%v err=%v", i, last, err)
				}
				got = append(got, content(c))
			}
			if strings.Join(got, "") != "abc" {
				t.Fatalf("chunks = %q, want a b c in order", got)
			}
			c, last, err := next(t, s)
			if err != nil || !last {
				t.Fatalf("final: last=%v err=%v", last, err)
			}
			if c.Usage == nil || c.Usage.TotalTokens != 4 || c.Routing == nil || *c.Choices[0].FinishReason != "stop" {
				t.Fatalf("final chunk = %+v", c)
			}
			_, last, err = next(t, s)
			if !last || schema.CodeOf(err) != schema.CodeCancelled {
				t.Fatalf("after the end: last=%v err=%v", last, err)
			}
			// A stream that ended tells the worker nothing.
			s.Close()
			if m, err := control.NextMsg(200 * time.Millisecond); err == nil {
				t.Fatalf("control got %+v after a finished stream", m)
			}
		})
	}
}

func TestStreamSeqGapIsAnError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, j, control := streamJob(t, e, context.Background(), schema.MsgPack)
	e.chunk(j.msg.Reply, control.Subject, schema.MsgPack, 1, delta("a"), false)
	e.chunk(j.msg.Reply, control.Subject, schema.MsgPack, 3, delta("c"), false)
	if c, last, err := next(t, s); err != nil || last || content(c) != "a" {
		t.Fatalf("first: %v %v %v", c, last, err)
	}
	_, last, err := next(t, s)
	got := wantCode(t, err, schema.CodeConnection)
	if !last || !strings.Contains(got.Message, "got 3, want 2") {
		t.Fatalf("last=%v err=%v", last, err)
	}
}

func TestStreamEndsWithTheWorkersTypedError(t *testing.T) {
	t.Parallel()
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		t.Run(codec.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s, j, control := streamJob(t, e, context.Background(), codec)
			e.chunk(j.msg.Reply, control.Subject, codec, 1, delta("a"), false)
			want := schema.NewError(schema.CodeProviderError, "upstream died").WithRetryAfter(time.Second)
			e.streamError(j.msg.Reply, codec, 2, want)
			if _, _, err := next(t, s); err != nil {
				t.Fatal(err)
			}
			_, last, err := next(t, s)
			got := wantCode(t, err, schema.CodeProviderError)
			if !last || *got != *want {
				t.Fatalf("last=%v err=%+v, want %+v", last, got, want)
			}
		})
	}
}

func TestStreamEndsWithContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		code string
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, schema.CodeCancelled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, schema.CodeTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx, cancel := tt.ctx()
			defer cancel()
			s, j, control := streamJob(t, e, ctx, schema.MsgPack)
			e.chunk(j.msg.Reply, control.Subject, schema.MsgPack, 1, delta("a"), false)
			if _, _, err := next(t, s); err != nil {
				t.Fatal(err)
			}
			_, last, err := next(t, s) // the worker sends nothing more
			wantCode(t, err, tt.code)
			if !last {
				t.Fatal("last = false")
			}
			// The worker is told to stop.
			if _, err := control.NextMsg(wait); err != nil {
				t.Fatalf("control subject got nothing: %v", err)
			}
		})
	}
}

func TestStreamCloseCancelsOnTheControlSubject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, j, control := streamJob(t, e, context.Background(), schema.MsgPack)
	e.chunk(j.msg.Reply, control.Subject, schema.MsgPack, 1, delta("a"), false)
	if _, _, err := next(t, s); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := control.NextMsg(wait); err != nil {
		t.Fatalf("control subject got nothing: %v", err)
	}
	s.Close()
	if m, err := control.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("second Close published again: %+v", m)
	}
	_, last, err := next(t, s)
	if !last || schema.CodeOf(err) != schema.CodeCancelled {
		t.Fatalf("Next after Close: last=%v err=%v", last, err)
	}
}

func TestStreamAllIteratesUntilTheLastChunk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, j, control := streamJob(t, e, context.Background(), schema.MsgPack)
	for i, text := range []string{"x", "y"} {
		e.chunk(j.msg.Reply, control.Subject, schema.MsgPack, i+1, delta(text), false)
	}
	e.chunk(j.msg.Reply, control.Subject, schema.MsgPack, 3, final(), true)
	e.chunk(j.msg.Reply, control.Subject, schema.MsgPack, 4, delta("after the end"), false)
	done := make(chan []string, 1)
	go func() {
		var got []string
		for c, err := range s.All() {
			if err != nil {
				got = append(got, "error: "+err.Error())
				break
			}
			if c.Usage != nil {
				got = append(got, "<end>")
				continue
			}
			got = append(got, content(c))
		}
		done <- got
	}()
	select {
	case got := <-done:
		if strings.Join(got, ",") != "x,y,<end>" {
			t.Fatalf("All yielded %q", got)
		}
	case <-time.After(wait):
		t.Fatal("All did not stop after the last chunk")
	}
}

func TestStreamAllYieldsTheError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, j, control := streamJob(t, e, context.Background(), schema.JSON)
	e.chunk(j.msg.Reply, control.Subject, schema.JSON, 1, delta("x"), false)
	e.streamError(j.msg.Reply, schema.JSON, 2, schema.NewError(schema.CodeTimeout, "deadline passed"))
	var texts []string
	var errs []error
	for c, err := range s.All() {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		texts = append(texts, content(c))
	}
	if strings.Join(texts, ",") != "x" || len(errs) != 1 || schema.CodeOf(errs[0]) != schema.CodeTimeout {
		t.Fatalf("texts %q errs %v", texts, errs)
	}
}

func TestStreamAllBreakClosesTheStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, j, control := streamJob(t, e, context.Background(), schema.MsgPack)
	e.chunk(j.msg.Reply, control.Subject, schema.MsgPack, 1, delta("x"), false)
	e.chunk(j.msg.Reply, control.Subject, schema.MsgPack, 2, delta("y"), false)
	for range s.All() {
		break
	}
	if _, err := control.NextMsg(wait); err != nil {
		t.Fatalf("breaking out of All did not cancel the worker: %v", err)
	}
}

func TestStreamMalformedChunkIsInternal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, j, control := streamJob(t, e, context.Background(), schema.MsgPack)
	m := &nats.Msg{Subject: j.msg.Reply, Reply: control.Subject, Data: []byte{0xc1}, Header: nats.Header{client.HeaderSeq: {"1"}}}
	if err := e.worker.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	_, last, err := next(t, s)
	wantCode(t, err, schema.CodeInternal)
	if !last {
		t.Fatal("last = false")
	}
	if _, err := control.NextMsg(wait); err != nil {
		t.Fatalf("worker not told to stop: %v", err)
	}
}

func TestStreamWithoutResponderIsNoDeployments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, err := e.client(client.Config{}).Stream(context.Background(), "nobody", hello())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, last, err := next(t, s)
	wantCode(t, err, schema.CodeNoDeployments)
	if !last {
		t.Fatal("last = false")
	}
}
