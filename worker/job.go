package worker

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// maxAttempt bounds the attempt number a job's header may report in its
// routing block.
const maxAttempt = 1 << 16

// call is one job being run: the message, its codec and dispatcher key,
// and whether the producer's deadline is what bounds the provider call.
type call struct {
	queued
	codec schema.Codec
	// producerDeadline is set when the job's deadline (Llmq-Deadline) comes
	// before the deployment's own time-out, and so ends the call.
	producerDeadline bool
	// ticket is the call's place in the usage window; prompt its prompt's
	// token estimate (what a failed call counts for).
	ticket uint64
	prompt int64
}

// expired reports whether a call ended because the producer's deadline
// passed. That is the job's time running out, not the deployment failing
// (see cooling).
func (c *call) expired(ctx context.Context) bool {
	return c.producerDeadline && errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// handle runs one job and replies. Every path out of it replies to the
// producer (accept has dropped the jobs that cannot be answered).
func (w *Worker) handle(q queued) {
	m := q.m
	if w.cancelledEarly(m) {
		return
	}
	c := &call{queued: q, codec: broker.CodecOf(m)}
	req, err := schema.DecodeRequestLimits(c.codec, m.Data, w.cfg.Limits)
	if err == nil {
		err = w.kind(req)
	}
	if err != nil {
		w.rate.leave()
		w.replyError(m, c.codec, schema.AsError(err))
		return
	}
	if w.precall(c, req) {
		return
	}
	if req.Limit() == 0 && w.cfg.MaxTokens > 0 && !req.IsEmbedding() {
		n := w.cfg.MaxTokens
		req.MaxTokens = &n
	}
	routing := &schema.Routing{
		Tier:       w.cfg.Tier,
		Deployment: w.cfg.Deployment,
		Worker:     w.cfg.ID,
		Provider:   w.cfg.ProviderName,
		Model:      w.cfg.Model,
		Attempts:   1,
		Dispatcher: q.from,
	}
	if m.Header != nil {
		// Absent on most jobs: parsing "" would allocate its error.
		if v := m.Header.Get(schema.HeaderQueuedUs); v != "" {
			if us, err := strconv.ParseInt(v, 10, 64); err == nil && us > 0 {
				routing.QueueMs = float64(us) / 1000
			}
		}
		if v := m.Header.Get(schema.HeaderAttempt); v != "" {
			if a, err := strconv.Atoi(v); err == nil && a > 0 {
				routing.Attempts = min(a, maxAttempt)
			}
		}
	}
	timeout := w.cfg.Timeout
	if req.Stream {
		timeout = w.cfg.StreamTimeout
	}
	now := time.Now()
	deadline := now.Add(timeout)
	if dl, ok := headerDeadline(m, deadline); ok {
		if !dl.After(now) {
			w.rate.leave()
			w.replyError(m, c.codec, schema.NewError(schema.CodeTimeout, "the job's deadline passed before a worker started it"))
			return
		}
		deadline, c.producerDeadline = dl, true
	}
	est, prompt := estimateTokens(req)
	ticket, ok, wait, full := w.rate.admit(est)
	if !ok {
		w.refuseRate(c, est, wait)
		return
	}
	if full {
		w.kick() // dispatchers learn at once that the window is full
	}
	c.ticket, c.prompt = ticket, prompt
	ctx, cancel := context.WithDeadline(w.ctx, deadline)
	defer cancel()
	ctx, e := w.bindModel(ctx, m, routing)
	if e != nil {
		w.replyError(m, c.codec, e)
		return
	}
	if req.Stream {
		w.stream(ctx, c, req, routing)
		return
	}
	if m.Header.Get(schema.HeaderControl) == "true" {
		var stop func()
		ctx, stop = w.control(ctx, m)
		defer stop()
	}
	if req.IsEmbedding() {
		w.embed(ctx, c, req, routing)
		return
	}
	start := time.Now()
	resp, err := w.call(ctx, req)
	routing.CallMs = ms(time.Since(start))
	w.spent(c, usageOf(resp), err)
	if errors.Is(context.Cause(ctx), errProducerGone) {
		w.jobFailed(schema.CodeCancelled)
		w.log.Debug("job cancelled: producer stopped listening")
		return
	}
	if err != nil {
		w.fail(ctx, c, err)
		return
	}
	w.window.add(routing.CallMs, resp.Usage.CompletionTokens)
	w.complete(resp, routing)
	w.replyDone(m, c, resp, routing, resp.Usage)
}

// control makes a non-streamed job cancellable (see schema.HeaderControl
// and cancel.go): the returned ctx is cancelled with errProducerGone when
// its producer publishes to Subjects.Cancel(its reply subject). Nothing is
// sent to the producer.
func (w *Worker) control(ctx context.Context, m *nats.Msg) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	untrack := w.cancels.track(m.Reply, cancel, time.Now())
	return ctx, func() {
		untrack()
		cancel(nil)
	}
}

// fail ends a job whose provider call failed before anything reached the
// producer.
//
//   - The producer's deadline passed: the job is answered timeout here; it
//     is no failure of the deployment (no cooldown) and there is no time
//     left for another attempt (no bounce).
//   - Otherwise the failure counts toward a cooldown (see cooling), and a
//     job that came through a dispatcher goes back to the dispatchers
//     (Subjects.Retry), which retry it elsewhere, fall back to another
//     tier, or answer the producer; others are answered here.
func (w *Worker) fail(ctx context.Context, c *call, err error) {
	if c.expired(ctx) {
		w.replyError(c.m, c.codec, schema.NewError(schema.CodeTimeout, "the job's deadline passed during the provider call"))
		return
	}
	e := w.callError(ctx, err)
	w.coolFail(e)
	if c.from != "" {
		b := broker.BounceMsg(w.cfg.Subjects.Retry(), c.m, e, w.cfg.Tier, w.cfg.Deployment)
		if err := w.nc.PublishMsg(b); err == nil {
			w.jobFailed(e.Code)
			w.log.Debug("job bounced for retry", "code", e.Code, "err", e.Message)
			return
		}
	}
	w.replyError(c.m, c.codec, e)
}

// spent settles a call's tokens in the usage window: its usage when the
// provider reports one, its prompt's estimate when it failed, else the
// estimate it was admitted with.
func (w *Worker) spent(c *call, u *schema.Usage, err error) {
	switch {
	case err != nil:
		w.rate.settle(c.ticket, c.prompt)
	case u != nil && u.PromptTokens+u.CompletionTokens > 0:
		w.rate.settle(c.ticket, int64(max(u.PromptTokens, 0))+int64(max(u.CompletionTokens, 0)))
	}
}

// usageOf is the usage of resp, or nil.
func usageOf(resp *schema.Response) *schema.Usage {
	if resp == nil {
		return nil
	}
	return &resp.Usage
}

// refuseRate answers a job the deployment's usage window has no room for,
// without calling the provider. It is not a failure of the deployment: no
// cooldown. A job that came through a dispatcher is bounced, marked
// Llmq-Refused, so a dispatcher queues it again without counting an
// attempt (and sends this worker nothing until wait has passed); others
// are answered rate_limited with the wait as retry-after. A job whose
// estimate alone is over the tpm (wait < 0) can never run here: it is
// bounced as a failed attempt, so it goes elsewhere or is answered.
func (w *Worker) refuseRate(c *call, est int64, wait time.Duration) {
	w.kick() // the beat shows the window full and when it frees
	var e *schema.Error
	if wait < 0 {
		e = schema.Errorf(schema.CodeRateLimited, "the job's estimated %d tokens are more than deployment %s's tpm limit of %d", est, w.cfg.Deployment, w.cfg.TPM)
	} else {
		wait = roundUpMs(wait)
		e = schema.Errorf(schema.CodeRateLimited, "deployment %s is at its usage limit (%s per %v); room again in %v", w.cfg.Deployment, w.limits(), w.cfg.RateWindow, wait).WithRetryAfter(wait)
	}
	if c.from != "" {
		b := broker.BounceMsg(w.cfg.Subjects.Retry(), c.m, e, w.cfg.Tier, w.cfg.Deployment)
		if wait >= 0 {
			b.Header[schema.HeaderRefused] = []string{w.cfg.ID}
		}
		if err := w.nc.PublishMsg(b); err == nil {
			w.jobFailed(e.Code)
			return
		}
	}
	w.replyError(c.m, c.codec, e)
}

// limits describes the deployment's limits for a message.
func (w *Worker) limits() string {
	switch {
	case w.cfg.RPM > 0 && w.cfg.TPM > 0:
		return "rpm " + strconv.FormatInt(w.cfg.RPM, 10) + ", tpm " + strconv.FormatInt(w.cfg.TPM, 10)
	case w.cfg.RPM > 0:
		return "rpm " + strconv.FormatInt(w.cfg.RPM, 10)
	}
	return "tpm " + strconv.FormatInt(w.cfg.TPM, 10)
}

// complete fills the fields of a provider's response that llmq owns.
func (w *Worker) complete(resp *schema.Response, routing *schema.Routing) {
	resp.Object = schema.ObjectCompletion
	if resp.Created == 0 {
		resp.Created = time.Now().Unix()
	}
	if resp.ID == "" {
		resp.ID = "chatcmpl-" + nuid.Next()
	}
	if resp.Model == "" {
		resp.Model = routing.Model
	}
	if resp.Usage.TotalTokens == 0 {
		resp.Usage.TotalTokens = resp.Usage.PromptTokens + resp.Usage.CompletionTokens
	}
	routing.CostUSD = w.cost(resp.Usage)
	resp.Routing = routing
}

// callError types a provider failure, telling a passed deadline from a
// worker shutting down. A call whose deadline passed is a timeout whatever
// the adapter made of it: a stream cut by the deadline midway may look
// like a malformed or dropped one to the adapter.
func (w *Worker) callError(ctx context.Context, err error) *schema.Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && schema.CodeOf(err) != schema.CodeTimeout {
		return schema.NewError(schema.CodeTimeout, "the deployment's time-out passed during the provider call")
	}
	e := schema.AsError(err)
	if schema.CodeOf(err) == "" && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// A bare context error: the stream's emit returns one once the
		// call's ctx has ended, and a Streamer hands emit's error back.
		e = provider.TransportError(ctx, err)
	}
	if e.Code == schema.CodeCancelled && w.ctx.Err() != nil {
		return schema.NewError(schema.CodeCancelled, "worker "+w.cfg.ID+" stopped before the job finished")
	}
	if e.Code == schema.CodeCancelled && ctx.Err() == context.DeadlineExceeded {
		return schema.NewError(schema.CodeTimeout, "the job's deadline passed during the provider call")
	}
	return e
}

func (w *Worker) replyError(m *nats.Msg, codec schema.Codec, e *schema.Error) {
	w.jobFailed(e.Code)
	if err := broker.ReplyErrorVia(w.cfg.Inboxes, w.nc, m.Reply, codec, e, schema.HeaderTier, w.cfg.Tier); err != nil {
		w.log.Error("error reply", "err", err)
	}
	w.log.Debug("job failed", "code", e.Code, "err", e.Message)
}

// headerDeadline reads the job's absolute deadline (Llmq-Deadline, Unix
// ms) and reports whether it comes before limit, the deployment's own
// time-out. The header is untrusted: a value that is not a positive
// number, or is later than limit, is ignored (the time-out applies).
func headerDeadline(m *nats.Msg, limit time.Time) (time.Time, bool) {
	if m.Header == nil {
		return time.Time{}, false
	}
	v := m.Header.Get(schema.HeaderDeadline)
	if v == "" {
		return time.Time{}, false
	}
	msec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || msec <= 0 || msec > limit.UnixMilli() {
		return time.Time{}, false
	}
	return time.UnixMilli(msec), true
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// replyDone sends a finished job's reply and counts the job done; a reply
// over the NATS max payload is answered payload_too_large instead.
func (w *Worker) replyDone(m *nats.Msg, c *call, resp any, routing *schema.Routing, usage schema.Usage) {
	if err := broker.ReplyVia(w.cfg.Inboxes, w.nc, m.Reply, c.codec, resp); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			w.replyError(m, c.codec, schema.Errorf(schema.CodePayloadTooLarge, "the reply is over the NATS max payload of %d bytes", w.nc.MaxPayload()))
			return
		}
		w.jobFailed(schema.CodeInternal)
		w.log.Error("reply", "err", err)
		return
	}
	w.jobDone(routing, usage)
}
