package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// Config configures a Client. The zero value speaks msgpack on the "llm"
// prefix with a 60 s default time-out.
type Config struct {
	// Subjects lays out subjects. Default prefix "llm".
	Subjects broker.Subjects
	// Codec of jobs and replies. Default msgpack.
	Codec schema.Codec
	// Timeout applies when ctx has no deadline. Default 60 s.
	Timeout time.Duration
	// NoResponderRetries is how many times Complete sends a job again when
	// NATS says no dispatcher listens (during a dispatcher restart, say):
	// the job certainly ran nowhere, so this is always safe. The waits
	// between tries come from github.com/cenkalti/backoff/v4: 100 ms,
	// doubling, ±50% jitter, at most 5 s each; a wait that would end
	// after the deadline is not waited (Complete answers at once). Default
	// 3; negative disables.
	NoResponderRetries int
	// AttemptTimeout, when set, makes Complete send a job again when no
	// answer came within it (a dispatcher died holding the job). The job may
	// then run twice — only the first answer is returned — so set it only
	// for jobs that are safe to repeat. It is sent again after a back-off
	// as for NoResponderRetries, never past the deadline. Default 0: wait
	// for the deadline.
	AttemptTimeout time.Duration
	// Priority, when set, is sent as the Llmq-Priority header of every job
	// (schema.PriorityBatch for batch jobs). Default: none (interactive).
	Priority string
	// Dispatcher, when set, is a dispatcher in this process that Stream
	// hands its jobs to instead of publishing them (the gateway of llmq up
	// sets its own): one NATS crossing less; the chunks still come over
	// NATS. It must use the client's connection. A job it does not take
	// is published. Complete and Embed publish always (they wait on the
	// connection's shared reply subscription). Default nil.
	Dispatcher LocalDispatcher
}

// LocalDispatcher is a dispatcher running in the producer's process;
// *dispatcher.Dispatcher implements it.
type LocalDispatcher interface {
	// Take handles a job message as if it had arrived on NATS, or returns
	// false, doing nothing, when it takes no jobs. The message is the
	// dispatcher's from then on.
	Take(m *nats.Msg) bool
	// Conn is the dispatcher's NATS connection. It must be the producer's:
	// a job's reply can then not overtake the subscription to its inbox,
	// which the producer sends on that connection first.
	Conn() *nats.Conn
}

// Client sends jobs. It is safe for concurrent use.
type Client struct {
	nc  *nats.Conn
	cfg Config
	ct  []string
}

// New returns a client on nc.
func New(nc *nats.Conn, cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.NoResponderRetries == 0 {
		cfg.NoResponderRetries = 3
	}
	return &Client{nc: nc, cfg: cfg, ct: []string{cfg.Codec.ContentType()}}
}

// Complete sends req to tier and waits for the reply. req.Stream is
// ignored (use Stream). The error is a *schema.Error for every failure the
// producer can act on: a job error llmq replied with, a time-out, no
// dispatcher listening, a job over the max payload.
func (c *Client) Complete(ctx context.Context, tier string, req *schema.Request) (*schema.Response, error) {
	if req.IsEmbedding() {
		return nil, schema.NewError(schema.CodeBadRequest, "input: an embedding job: send it with Embed")
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	r := *req
	r.Stream = false
	reply, err := c.request(ctx, tier, &r)
	if err != nil {
		return nil, err
	}
	return schema.DecodeReply(broker.CodecOf(reply), reply.Data, broker.IsError(reply))
}

// Embed sends an embedding job (req.Input set, no messages) to tier and
// waits for its vectors. Embedding jobs travel and are routed as chat
// jobs are (same subjects, retries, fallbacks); the tier must have
// deployments of model_info.mode embedding, or the reply is a
// bad_request. Errors are as Complete's.
func (c *Client) Embed(ctx context.Context, tier string, req *schema.Request) (*schema.EmbeddingResponse, error) {
	if !req.IsEmbedding() {
		return nil, schema.NewError(schema.CodeBadRequest, "input: required in an embedding job (a chat job goes with Complete)")
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	r := *req
	r.Stream = false
	reply, err := c.request(ctx, tier, &r)
	if err != nil {
		return nil, err
	}
	return schema.DecodeEmbeddingReply(broker.CodecOf(reply), reply.Data, broker.IsError(reply))
}

// request sends r to tier and returns the reply message, retrying as
// Complete describes.
func (c *Client) request(ctx context.Context, tier string, r *schema.Request) (*nats.Msg, error) {
	var retries *backoff.ExponentialBackOff // made at the first retry: most requests have none
	for attempt := 0; ; attempt++ {
		msg, err := c.message(ctx, tier, r, "")
		if err != nil {
			return nil, err
		}
		actx, acancel := ctx, context.CancelFunc(func() {})
		if c.cfg.AttemptTimeout > 0 {
			actx, acancel = context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		}
		reply, err := c.nc.RequestMsgWithContext(actx, msg)
		acancel()
		if err == nil {
			return reply, nil
		}
		retry := errors.Is(err, nats.ErrNoResponders) && attempt < c.cfg.NoResponderRetries ||
			c.cfg.AttemptTimeout > 0 && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) // this attempt's time is up, not the job's
		if retry {
			dl, _ := ctx.Deadline() // bound gives every ctx a deadline
			if retries == nil {
				retries = newRetryBackOff()
			}
			if wait, ok := retryWait(retries, time.Now(), dl, 0); ok {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
					continue
				case <-ctx.Done():
					t.Stop()
				}
			}
		}
		return nil, c.requestError(ctx, tier, err)
	}
}

// newRetryBackOff is the back-off of one Complete call's retries: 100 ms,
// doubling, with ±50% jitter, each wait at most 5 s; the job's deadline,
// not the library's elapsed-time limit, ends the retries.
func newRetryBackOff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
}

// retryWait is the wait before the next retry: b's next back-off, at least
// floor (a server's retry-after, when there is one). ok is false when the
// wait would end after deadline: then there is no retry.
func retryWait(b backoff.BackOff, now, deadline time.Time, floor time.Duration) (wait time.Duration, ok bool) {
	wait = b.NextBackOff()
	if wait == backoff.Stop {
		return 0, false
	}
	wait = max(wait, floor)
	if !deadline.IsZero() && now.Add(wait).After(deadline) {
		return 0, false
	}
	return wait, true
}

func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// message encodes req as a job for tier, with the deadline of ctx. tier
// is any model name (a tier, an alias, a name a wildcard tier matches):
// one that cannot be a subject goes on <prefix>.jobs._ with Llmq-Model.
func (c *Client) message(ctx context.Context, tier string, req *schema.Request, reply string) (*nats.Msg, error) {
	subject, model, ok := c.cfg.Subjects.ModelSubject(tier)
	if !ok {
		return nil, schema.Errorf(schema.CodeUnknownTier, "model %.64q is not a valid model name", tier)
	}
	data, err := c.cfg.Codec.Marshal(req)
	if err != nil {
		return nil, schema.Errorf(schema.CodeBadRequest, "encode request: %v", err)
	}
	if max := c.nc.MaxPayload(); max > 0 && int64(len(data)) > max-1024 {
		return nil, schema.Errorf(schema.CodePayloadTooLarge, "job of %d bytes is over the NATS max payload of %d bytes (less 1 KiB for headers)", len(data), max)
	}
	h := nats.Header{schema.HeaderContentType: c.ct}
	if req.Stream {
		h[schema.HeaderStreaming] = []string{"true"}
	}
	if c.cfg.Priority != "" {
		h[schema.HeaderPriority] = []string{c.cfg.Priority}
	}
	if tags := req.JobTags(); len(tags) > 0 {
		// Tag routing reads the header; the dispatcher need not decode the body.
		h[schema.HeaderTags] = []string{strings.Join(tags, ",")}
	}
	if dl, ok := ctx.Deadline(); ok {
		h[schema.HeaderDeadline] = []string{strconv.FormatInt(dl.UnixMilli(), 10)}
	}
	if model != "" {
		h[schema.HeaderModel] = []string{model}
	}
	return &nats.Msg{Subject: subject, Reply: reply, Header: h, Data: data}, nil
}

// requestError turns a NATS request failure into a typed error.
func (c *Client) requestError(ctx context.Context, tier string, err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return schema.Errorf(schema.CodeNoDeployments, "no dispatcher is listening on %s", c.cfg.Subjects.Jobs(tier))
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return schema.Errorf(schema.CodeTimeout, "no reply from tier %q before the deadline", tier)
	case errors.Is(err, context.Canceled):
		return schema.NewError(schema.CodeCancelled, "request cancelled")
	case errors.Is(err, nats.ErrMaxPayload):
		return schema.Errorf(schema.CodePayloadTooLarge, "job is over the NATS max payload of %d bytes", c.nc.MaxPayload())
	}
	return fmt.Errorf("llmq: request to tier %q: %w", tier, err)
}
