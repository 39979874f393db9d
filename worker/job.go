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

// handle runs one job and replies. Every path out of it replies to the
// producer, except a job that came without a reply subject (logged and
// counted: there is nobody to tell).
func (w *Worker) handle(m *nats.Msg) {
	codec := broker.CodecOf(m)
	if m.Reply == "" {
		w.jobFailed(OutcomeDropped)
		w.log.Warn("job without a reply subject dropped", "subject", m.Subject, "bytes", len(m.Data))
		return
	}
	req, err := schema.DecodeRequest(codec, m.Data)
	if err != nil {
		w.replyError(m, codec, schema.AsError(err))
		return
	}
	if req.Limit() == 0 && w.cfg.MaxTokens > 0 {
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
	}
	if m.Header != nil {
		routing.Dispatcher = m.Header.Get(schema.HeaderDispatcher)
		if us, err := strconv.ParseInt(m.Header.Get(schema.HeaderQueuedUs), 10, 64); err == nil {
			routing.QueueMs = float64(us) / 1000
		}
		if a, err := strconv.Atoi(m.Header.Get(schema.HeaderAttempt)); err == nil && a > 0 {
			routing.Attempts = a
		}
	}
	timeout := w.cfg.Timeout
	if req.Stream {
		timeout = w.cfg.StreamTimeout
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := headerDeadline(m); ok {
		if !dl.After(time.Now()) {
			w.replyError(m, codec, schema.NewError(schema.CodeTimeout, "the job's deadline passed before a worker started it"))
			return
		}
		if dl.Before(deadline) {
			deadline = dl
		}
	}
	ctx, cancel := context.WithDeadline(w.ctx, deadline)
	defer cancel()
	if req.Stream {
		w.stream(ctx, m, req, codec, routing)
		return
	}
	if m.Header.Get(schema.HeaderControl) == "true" {
		var stop func()
		ctx, stop = w.control(ctx, m)
		defer stop()
	}
	start := time.Now()
	resp, err := w.cfg.Provider.Complete(ctx, req)
	routing.CallMs = ms(time.Since(start))
	if errors.Is(context.Cause(ctx), errProducerGone) {
		w.jobFailed(schema.CodeCancelled)
		w.log.Debug("job cancelled: producer stopped listening")
		return
	}
	if err != nil {
		w.fail(m, codec, w.callError(ctx, err))
		return
	}
	w.window.add(routing.CallMs, resp.Usage.CompletionTokens)
	w.complete(resp, routing)
	if err := broker.Reply(w.nc, m.Reply, codec, resp); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			w.replyError(m, codec, schema.Errorf(schema.CodePayloadTooLarge, "the reply is over the NATS max payload of %d bytes", w.nc.MaxPayload()))
			return
		}
		w.jobFailed(schema.CodeInternal)
		w.log.Error("reply", "err", err)
		return
	}
	w.jobDone(routing, resp.Usage)
}

// control gives a non-streamed job a control subject, as a stream has (see
// schema.HeaderControl): the returned ctx is cancelled with
// errProducerGone when the producer publishes there or has stopped
// listening.
func (w *Worker) control(ctx context.Context, m *nats.Msg) (context.Context, func()) {
	id := nuid.Next()
	ctx, cancel := context.WithCancelCause(ctx)
	w.streams.Store(id, cancel)
	msg := &nats.Msg{Subject: m.Reply, Reply: w.inbox + "." + id, Header: nats.Header{schema.HeaderControl: {schema.ControlStarted}}}
	if err := w.nc.PublishMsg(msg); err != nil {
		w.log.Debug("control message", "err", err)
	}
	return ctx, func() {
		w.streams.Delete(id)
		cancel(nil)
	}
}

// fail ends a job whose provider call failed. A job that came through a
// dispatcher goes back to the dispatchers (Subjects.Retry), which retry it
// elsewhere, fall back to another tier, or answer the producer; others are
// answered here. Either way the failure counts toward a cooldown.
func (w *Worker) fail(m *nats.Msg, codec schema.Codec, e *schema.Error) {
	w.coolFail(e)
	if m.Header.Get(schema.HeaderDispatcher) != "" {
		b := broker.BounceMsg(w.cfg.Subjects.Retry(), m, e, w.cfg.Tier, w.cfg.Deployment)
		if err := w.nc.PublishMsg(b); err == nil {
			w.jobFailed(e.Code)
			w.log.Debug("job bounced for retry", "code", e.Code, "err", e.Message)
			return
		}
	}
	w.replyError(m, codec, e)
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
		resp.Model = w.cfg.Model
	}
	if resp.Usage.TotalTokens == 0 {
		resp.Usage.TotalTokens = resp.Usage.PromptTokens + resp.Usage.CompletionTokens
	}
	routing.CostUSD = w.cost(resp.Usage)
	resp.Routing = routing
}

// callError types a provider failure, telling a passed deadline from a
// worker shutting down.
func (w *Worker) callError(ctx context.Context, err error) *schema.Error {
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
	if err := broker.ReplyError(w.nc, m.Reply, codec, e, schema.HeaderTier, w.cfg.Tier); err != nil {
		w.log.Error("error reply", "err", err)
	}
	w.log.Debug("job failed", "code", e.Code, "err", e.Message)
}

// headerDeadline reads the job's absolute deadline.
func headerDeadline(m *nats.Msg) (time.Time, bool) {
	if m.Header == nil {
		return time.Time{}, false
	}
	v := m.Header.Get(schema.HeaderDeadline)
	if v == "" {
		return time.Time{}, false
	}
	msec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || msec <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(msec), true
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
