package gateway

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// noResponderRetries is how many times complete sends a job again when
// NATS says no dispatcher listens (a dispatcher restarting), as
// client.Complete does: the job ran nowhere, so this is always safe.
const noResponderRetries = 3

// complete runs a non-streamed job that the gateway can cancel: unlike
// client.Complete it waits on an inbox of its own and marks the job
// cancellable (schema.HeaderControl), so that when ctx ends — the HTTP
// client went away — it publishes a cancel (Subjects.Cancel) for the job's
// reply subject: the worker running it cancels the provider call, and a
// job still queued in a dispatcher is dropped by the worker that gets it.
// Nothing is sent for a job that ends normally.
func (g *Gateway) complete(ctx context.Context, tier string, req *schema.Request) (*schema.Response, error) {
	m, err := g.send(ctx, tier, req)
	if err != nil {
		return nil, err
	}
	return schema.DecodeReply(broker.CodecOf(m), m.Data, broker.IsError(m))
}

// embed runs an embedding job as complete runs a chat job.
func (g *Gateway) embed(ctx context.Context, tier string, req *schema.Request) (*schema.EmbeddingResponse, error) {
	m, err := g.send(ctx, tier, req)
	if err != nil {
		return nil, err
	}
	return schema.DecodeEmbeddingReply(broker.CodecOf(m), m.Data, broker.IsError(m))
}

// send publishes the job and returns its reply message (see complete).
func (g *Gateway) send(ctx context.Context, tier string, req *schema.Request) (*nats.Msg, error) {
	r := *req
	r.Stream = false
	codec := g.cfg.Codec
	data, err := codec.Marshal(&r)
	if err != nil {
		return nil, schema.Errorf(schema.CodeBadRequest, "encode request: %v", err)
	}
	nc := g.cfg.Conn
	if max := nc.MaxPayload(); max > 0 && int64(len(data)) > max-1024 {
		return nil, schema.Errorf(schema.CodePayloadTooLarge, "job of %d bytes is over the NATS max payload of %d bytes (less 1 KiB for headers)", len(data), max)
	}
	replies := make(chan *nats.Msg, 4)
	sub, err := nc.ChanSubscribe(nc.NewInbox(), replies)
	if err != nil {
		return nil, schema.Errorf(schema.CodeConnection, "subscribe: %v", err)
	}
	// A channel subscription needs no goroutine of its own. More than a
	// job's replies come only from somebody else publishing to the inbox:
	// nats.go drops those once the channel is full (a slow consumer).
	defer func() { _ = sub.Unsubscribe() }()
	if in := g.cfg.Inboxes; in != nil {
		defer in.Register(sub.Subject, replies)()
	}
	var deadline []string
	if dl, ok := ctx.Deadline(); ok {
		deadline = []string{strconv.FormatInt(dl.UnixMilli(), 10)}
	}
	subject := g.cfg.Subjects.Jobs(tier)
	retries, backoff := 0, 100*time.Millisecond
	for {
		// A message and header of its own each time: a dispatcher that
		// took the last one may have changed its header.
		h := nats.Header{schema.HeaderContentType: {codec.ContentType()}, schema.HeaderControl: {"true"}}
		if deadline != nil {
			h[schema.HeaderDeadline] = deadline
		}
		msg := &nats.Msg{Subject: subject, Reply: sub.Subject, Header: h, Data: data}
		if d := g.cfg.Dispatcher; d == nil || !d.Take(msg) {
			if err := nc.PublishMsg(msg); err != nil {
				return nil, publishError(nc, err)
			}
		}
		var m *nats.Msg
		select {
		case m = <-replies:
		case <-ctx.Done():
			g.cancel(sub.Subject)
			return nil, ctxError(ctx, tier)
		}
		if m.Header.Get("Status") != "503" || len(m.Data) != 0 {
			return m, nil
		}
		if retries >= noResponderRetries {
			return nil, schema.Errorf(schema.CodeNoDeployments, "no dispatcher is listening on %s", subject)
		}
		retries++
		select {
		case <-time.After(backoff):
			backoff *= 2
		case <-ctx.Done():
			g.cancel(sub.Subject)
			return nil, ctxError(ctx, tier)
		}
	}
}

// cancel tells the workers to cancel the job whose reply subject is
// inbox (see complete).
func (g *Gateway) cancel(inbox string) {
	_ = g.cfg.Conn.Publish(g.cfg.Subjects.Cancel(inbox), nil)
}

func ctxError(ctx context.Context, tier string) *schema.Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return schema.Errorf(schema.CodeTimeout, "no reply from tier %q before the deadline", tier)
	}
	return schema.NewError(schema.CodeCancelled, "request cancelled")
}

func publishError(nc *nats.Conn, err error) *schema.Error {
	if errors.Is(err, nats.ErrMaxPayload) {
		return schema.Errorf(schema.CodePayloadTooLarge, "job is over the NATS max payload of %d bytes", nc.MaxPayload())
	}
	return schema.Errorf(schema.CodeConnection, "publish the job: %v", err)
}
