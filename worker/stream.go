package worker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// errProducerGone ends a stream whose producer stopped listening.
var errProducerGone = errors.New("producer stopped listening")

// HeaderSeq numbers the messages of a stream from 1, so a producer can tell
// a lost chunk.
const HeaderSeq = "Llmq-Seq"

// stream runs a streamed job. Each chunk goes to the producer's inbox with
// a reply subject of the worker's: when the producer's inbox has no
// subscriber any more NATS answers there with "no responders", and a
// producer may publish there to cancel; either cancels the provider call.
func (w *Worker) stream(ctx context.Context, c *call, req *schema.Request, routing *schema.Routing) {
	m, codec := c.m, c.codec
	id := nuid.Next()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.streams.Store(id, cancel)
	defer w.streams.Delete(id)
	control := w.inbox + "." + id

	base := schema.Chunk{ID: "chatcmpl-" + id, Object: schema.ObjectChunk, Created: time.Now().Unix(), Model: routing.Model}
	seq := 0
	send := func(c *schema.Chunk, extra ...string) error {
		seq++
		data, err := codec.Marshal(c)
		if err != nil {
			return err
		}
		msg := &nats.Msg{Subject: m.Reply, Reply: control, Data: data, Header: nats.Header{
			schema.HeaderContentType: {codec.ContentType()},
			HeaderSeq:                {strconv.Itoa(seq)},
		}}
		for i := 0; i+1 < len(extra); i += 2 {
			msg.Header[extra[i]] = []string{extra[i+1]}
		}
		return w.nc.PublishMsg(msg)
	}
	start := time.Now()
	var ttft time.Duration
	emit := func(ch schema.ChunkChoice) error {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		c := base
		ch.FinishReason = nil // the last chunk carries it
		if seq == 0 {
			ch.Delta.Role = schema.RoleAssistant
			ttft = time.Since(start)
		}
		c.Choices = []schema.ChunkChoice{ch}
		return send(&c)
	}
	var resp *schema.Response
	var err error
	if w.streamer != nil {
		resp, err = w.streamer.Stream(ctx, req, emit)
	} else if resp, err = w.cfg.Provider.Complete(ctx, req); err == nil {
		err = provider.Replay(resp, emit)
	}
	routing.CallMs = ms(time.Since(start))
	routing.TTFTMs = ms(ttft)
	w.spent(c, usageOf(resp), err)
	if errors.Is(context.Cause(ctx), errProducerGone) {
		w.jobFailed(schema.CodeCancelled)
		w.log.Debug("stream cancelled: producer stopped listening")
		return
	}
	if err != nil {
		if seq == 0 {
			// Nothing reached the producer yet: the job can go elsewhere.
			w.fail(ctx, c, err)
			return
		}
		var e *schema.Error
		if c.expired(ctx) {
			// The producer's deadline: no failure of the deployment.
			e = schema.NewError(schema.CodeTimeout, "the job's deadline passed during the provider call")
		} else {
			e = w.callError(ctx, err)
			w.coolFail(e)
		}
		w.jobFailed(e.Code)
		msg := broker.ErrorMsg(m.Reply, codec, e)
		msg.Header[schema.HeaderStream] = []string{schema.StreamEnd}
		msg.Header[HeaderSeq] = []string{strconv.Itoa(seq + 1)}
		if perr := w.nc.PublishMsg(msg); perr != nil {
			w.log.Error("stream error reply", "err", perr)
		}
		return
	}
	w.window.add(routing.CallMs, resp.Usage.CompletionTokens)
	w.complete(resp, routing)
	last := base
	last.Choices = finishChoices(resp)
	last.Usage = &resp.Usage
	last.Routing = routing
	if err := send(&last, schema.HeaderStream, schema.StreamEnd); err != nil {
		w.jobFailed(schema.CodeInternal)
		w.log.Error("stream end", "err", err)
		return
	}
	w.jobDone(routing, resp.Usage)
}

// streamControl cancels a stream: NATS's "no responders" status (the
// producer's inbox is gone) or any message a producer sends to cancel.
//
// Anyone may publish here: the id is looked up, never trusted further.
func (w *Worker) streamControl(m *nats.Msg) {
	id, ok := strings.CutPrefix(m.Subject, w.inbox+".")
	if !ok || id == "" {
		return
	}
	if c, ok := w.streams.Load(id); ok {
		c.(context.CancelCauseFunc)(errProducerGone)
	}
}

// finishChoices returns the last chunk's choices: one per choice of the
// response, each with its finish reason (stop when the provider gave
// none).
func finishChoices(resp *schema.Response) []schema.ChunkChoice {
	n := max(len(resp.Choices), 1)
	out := make([]schema.ChunkChoice, n)
	reasons := make([]string, n)
	for i := range out {
		reasons[i] = schema.FinishStop
		if i < len(resp.Choices) {
			out[i].Index = resp.Choices[i].Index
			if r := resp.Choices[i].FinishReason; r != "" {
				reasons[i] = r
			}
		}
		out[i].FinishReason = &reasons[i]
	}
	return out
}
