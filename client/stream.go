package client

import (
	"context"
	"iter"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// HeaderSeq numbers a stream's messages from 1 (see worker.HeaderSeq).
const HeaderSeq = "Llmq-Seq"

// streamBuffer is how many chunks may wait for the reader; a reader that
// falls further behind makes NATS drop messages for this subscription,
// which the stream reports as an error rather than growing without bound.
const streamBuffer = 4096

// Stream is a streamed reply. Read it with Next (or All) until it returns
// the final chunk or an error; Close it when done, early or not.
type Stream struct {
	ctx     context.Context
	cancel  context.CancelFunc
	nc      *nats.Conn
	sub     *nats.Subscription
	ch      chan *nats.Msg
	tier    string
	seq     int
	control string // the worker's subject to cancel the stream on
	done    bool
	acc     Accumulator
}

// Stream sends req to tier with stream set and returns the stream of its
// chunks. The first chunk's arrival is not awaited.
func (c *Client) Stream(ctx context.Context, tier string, req *schema.Request) (*Stream, error) {
	ctx, cancel := c.bound(ctx)
	r := *req
	r.Stream = true
	// A fresh inbox of its own, not one under the connection's shared
	// request subscription: when this subscription goes, NATS must see
	// nobody listening, so the worker cancels.
	inbox := c.nc.NewInbox()
	msg, err := c.message(ctx, tier, &r, inbox)
	if err != nil {
		cancel()
		return nil, err
	}
	ch := make(chan *nats.Msg, streamBuffer)
	sub, err := c.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		cancel()
		return nil, err
	}
	if d := c.cfg.Dispatcher; d != nil && d.Conn() == c.nc && d.Take(msg) {
		return &Stream{ctx: ctx, cancel: cancel, nc: c.nc, sub: sub, ch: ch, tier: tier}, nil
	}
	if err := c.nc.PublishMsg(msg); err != nil {
		_ = sub.Unsubscribe()
		cancel()
		return nil, c.requestError(ctx, tier, err)
	}
	return &Stream{ctx: ctx, cancel: cancel, nc: c.nc, sub: sub, ch: ch, tier: tier}, nil
}

// Next returns the next chunk. The last chunk (with the finish reason,
// usage and routing) comes with last = true; after it, or after an error,
// the stream is over.
func (s *Stream) Next() (chunk *schema.Chunk, last bool, err error) {
	if s.done {
		return nil, true, schema.NewError(schema.CodeCancelled, "stream already ended")
	}
	select {
	case m := <-s.ch:
		if m.Reply != "" {
			s.control = m.Reply
		}
		if st := m.Header.Get("Status"); st == "503" {
			s.finish()
			return nil, true, schema.Errorf(schema.CodeNoDeployments, "no dispatcher is listening for tier %q", s.tier)
		}
		s.seq++
		if n, perr := strconv.Atoi(m.Header.Get(HeaderSeq)); perr == nil && n != s.seq {
			s.Close() // tell the worker to stop generating
			return nil, true, schema.Errorf(schema.CodeConnection, "stream lost chunks (got %d, want %d): reader too slow", n, s.seq)
		}
		end := m.Header.Get(schema.HeaderStream) == schema.StreamEnd
		codec := broker.CodecOf(m)
		if broker.IsError(m) {
			s.finish()
			return nil, true, schema.DecodeError(codec, m.Data)
		}
		c := new(schema.Chunk)
		if err := codec.Unmarshal(m.Data, c); err != nil {
			s.Close()
			return nil, true, schema.Errorf(schema.CodeInternal, "malformed chunk: %v", err)
		}
		s.acc.Add(c)
		if end {
			s.finish()
		}
		return c, end, nil
	case <-s.ctx.Done():
		s.Close()
		if s.ctx.Err() == context.DeadlineExceeded {
			return nil, true, schema.Errorf(schema.CodeTimeout, "stream from tier %q did not end before the deadline", s.tier)
		}
		return nil, true, schema.NewError(schema.CodeCancelled, "stream cancelled")
	}
}

// Response returns the reply assembled from the chunks read so far (see
// Accumulator): after the last chunk, what Complete would have returned —
// the text, the tool calls with their arguments joined from the
// delta.tool_calls pieces, finish reasons, usage and routing.
func (s *Stream) Response() *schema.Response { return s.acc.Response() }

// All iterates the chunks, the last one included; an error ends it.
func (s *Stream) All() iter.Seq2[*schema.Chunk, error] {
	return func(yield func(*schema.Chunk, error) bool) {
		defer s.Close()
		for {
			c, last, err := s.Next()
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(c, nil) || last {
				return
			}
		}
	}
}

func (s *Stream) finish() {
	s.done = true
	_ = s.sub.Unsubscribe()
	s.cancel()
}

// Close ends the stream. If it had not ended, the worker is told to cancel
// the provider call. Safe to call more than once.
func (s *Stream) Close() {
	if s.done {
		return
	}
	s.finish()
	if s.control != "" {
		_ = s.nc.Publish(s.control, nil)
	}
}
