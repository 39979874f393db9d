package gateway

import (
	"context"
	"errors"
	"strconv"
	"sync"
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
// client.Complete it waits on an inbox of its own and asks the worker for a
// control subject (schema.HeaderControl), so that when ctx ends — the HTTP
// client went away — it tells the worker to cancel the provider call. A
// job still queued in a dispatcher at that moment is cancelled as soon as
// a worker starts it: the worker's control message then finds nobody
// listening.
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
	c := &call{nc: nc, subjects: g.cfg.Subjects, replies: make(chan *nats.Msg, 4)}
	sub, err := nc.Subscribe(nc.NewInbox(), c.onMsg)
	if err != nil {
		return nil, schema.Errorf(schema.CodeConnection, "subscribe: %v", err)
	}
	h := nats.Header{schema.HeaderContentType: {codec.ContentType()}, schema.HeaderControl: {"true"}}
	if dl, ok := ctx.Deadline(); ok {
		h[schema.HeaderDeadline] = []string{strconv.FormatInt(dl.UnixMilli(), 10)}
	}
	msg := &nats.Msg{Subject: g.cfg.Subjects.Jobs(tier), Reply: sub.Subject, Header: h, Data: data}
	retries, backoff := 0, 100*time.Millisecond
	for {
		if err := nc.PublishMsg(msg); err != nil {
			_ = sub.Unsubscribe()
			return nil, publishError(nc, err)
		}
		var m *nats.Msg
		select {
		case m = <-c.replies:
		case <-ctx.Done():
			c.cancel(sub)
			return nil, ctxError(ctx, tier)
		}
		if m.Header.Get("Status") != "503" || len(m.Data) != 0 {
			_ = sub.Unsubscribe()
			return m, nil
		}
		if retries >= noResponderRetries {
			_ = sub.Unsubscribe()
			return nil, schema.Errorf(schema.CodeNoDeployments, "no dispatcher is listening on %s", msg.Subject)
		}
		retries++
		select {
		case <-time.After(backoff):
			backoff *= 2
		case <-ctx.Done():
			c.cancel(sub)
			return nil, ctxError(ctx, tier)
		}
	}
}

// call is a job in progress: its replies, and the control subjects of the
// workers that started it.
type call struct {
	nc       *nats.Conn
	subjects broker.Subjects
	replies  chan *nats.Msg

	mu       sync.Mutex
	controls []string
	gone     bool
}

// onMsg takes a message on the job's inbox.
func (c *call) onMsg(m *nats.Msg) {
	if m.Header.Get(schema.HeaderControl) != schema.ControlStarted {
		select {
		case c.replies <- m:
		default: // more than a job's replies: not from llmq
		}
		return
	}
	// Anyone who knows the inbox could send this: publish only to a
	// subject a reply may be, and keep a few.
	if c.subjects.CheckReply(m.Reply) != nil {
		return
	}
	c.mu.Lock()
	gone := c.gone
	if !gone && len(c.controls) < 8 {
		c.controls = append(c.controls, m.Reply)
	}
	c.mu.Unlock()
	if gone {
		_ = c.nc.Publish(m.Reply, nil)
	}
}

// cancel tells every worker that started the job to cancel it, and stops
// listening. Drain keeps handling the messages that reach the inbox until
// the server has seen the unsubscription: a worker's control message still
// on its way is answered with a cancel; after that, the server answers the
// worker "no responders", which cancels too.
func (c *call) cancel(sub *nats.Subscription) {
	c.mu.Lock()
	c.gone = true
	controls := c.controls
	c.mu.Unlock()
	for _, s := range controls {
		_ = c.nc.Publish(s, nil)
	}
	if err := sub.Drain(); err != nil {
		_ = sub.Unsubscribe()
	}
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
