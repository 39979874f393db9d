package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/sse"
)

// done is the data of the event that ends an OpenAI stream.
const done = "[DONE]"

// Stream sends req as a streamed chat completion, calls emit with each
// piece of content in order and returns the whole response once the
// server sends data: [DONE]. A stream that ends before [DONE] is a
// connection_error; an error object inside the stream is typed like an
// HTTP error. When emit fails, the call is cancelled and emit's error is
// returned as is.
func (p *Provider) Stream(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
	ctx, cancel := provider.CallContext(ctx, p.opts.StreamTimeout)
	defer cancel()
	resp, err := p.post(ctx, p.body(req, true))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, p.statusError(resp)
	}
	if isJSON(resp.Header) {
		// A server that ignored stream: true answered in one piece.
		out, err := p.decodeCompletion(ctx, resp)
		if err != nil {
			return nil, err
		}
		if out.Text() != "" || len(out.ToolCalls()) > 0 || len(out.Choices) > 1 {
			if err := provider.Replay(out, emit); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return p.readStream(ctx, resp, emit)
}

// streamState accumulates a stream.
type streamState struct {
	id, model string
	choices   []*choiceState // in order of first appearance
	usage     *wireUsage
}

// choiceState accumulates one choice of a stream.
type choiceState struct {
	index    int
	finish   string
	content  strings.Builder
	calls    []*callState
	logprobs *schema.Logprobs
}

// callState accumulates one streamed tool call.
type callState struct {
	index    int
	id, name string
	args     strings.Builder
}

// readStream reads SSE chunks until data: [DONE].
func (p *Provider) readStream(ctx context.Context, resp *http.Response, emit provider.Emit) (*schema.Response, error) {
	var st streamState
	r := sse.NewReader(provider.LimitReader(resp.Body, p.opts.MaxStreamBytes, "stream"))
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, p.named(schema.NewError(schema.CodeConnection, "stream ended before data: [DONE]"))
		}
		if err != nil {
			return nil, p.transportError(ctx, err)
		}
		data := bytes.TrimSpace(ev.Data)
		if string(data) == done {
			return p.finishStream(&st)
		}
		if len(data) == 0 {
			continue
		}
		if ev.Name == "error" {
			return nil, p.apiError(0, resp.Header, data)
		}
		var c chunk
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, p.named(schema.Errorf(schema.CodeProviderError, "malformed stream chunk (%d bytes): %v", len(data), err))
		}
		if hasError(c.Error) {
			return nil, p.apiError(0, resp.Header, data)
		}
		if err := p.add(&st, &c, emit); err != nil {
			return nil, err
		}
	}
}

// add folds one chunk into the state and emits its pieces: per choice,
// its content, its tool-call pieces (in OpenAI's shape: a call's id, type
// and name once, on its first piece) and its logprobs.
func (p *Provider) add(st *streamState, c *chunk, emit provider.Emit) error {
	if st.id == "" {
		st.id = c.ID
	}
	if st.model == "" {
		st.model = c.Model
	}
	if c.Usage != nil {
		st.usage = c.Usage
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		cs, err := p.choice(st, ch.Index)
		if err != nil {
			return err
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			cs.finish = *ch.FinishReason
		}
		piece := schema.ChunkChoice{Index: ch.Index, Logprobs: ch.Logprobs}
		piece.Delta.Content = ch.Delta.Content
		cs.content.WriteString(ch.Delta.Content)
		if ch.Logprobs != nil {
			if cs.logprobs == nil {
				cs.logprobs = &schema.Logprobs{}
			}
			cs.logprobs.Content = append(cs.logprobs.Content, ch.Logprobs.Content...)
		}
		for j := range ch.Delta.ToolCalls {
			d, err := p.addCall(cs, &ch.Delta.ToolCalls[j])
			if err != nil {
				return err
			}
			piece.Delta.ToolCalls = append(piece.Delta.ToolCalls, d)
		}
		if piece.Delta.Content == "" && piece.Delta.ToolCalls == nil && (piece.Logprobs == nil || len(piece.Logprobs.Content) == 0) {
			continue
		}
		if err := emit(piece); err != nil {
			return err
		}
	}
	return nil
}

// choice returns the state of choice index, new when first seen. Indexes
// are bounded: a stream is untrusted.
func (p *Provider) choice(st *streamState, index int) (*choiceState, error) {
	for _, cs := range st.choices {
		if cs.index == index {
			return cs, nil
		}
	}
	if index < 0 || index >= maxChoices {
		return nil, p.named(schema.Errorf(schema.CodeProviderError, "stream chunk has choice index %d, outside 0..%d", index, maxChoices-1))
	}
	cs := &choiceState{index: index}
	st.choices = append(st.choices, cs)
	return cs, nil
}

// addCall folds a tool-call piece into its call (the first piece of a
// call has its id and name, later ones fragments of its arguments) and
// returns the piece to emit.
func (p *Provider) addCall(cs *choiceState, tc *wireToolCall) (schema.ToolCallDelta, error) {
	var call *callState
	for _, c := range cs.calls {
		if c.index == tc.Index {
			call = c
			break
		}
	}
	if call == nil {
		if tc.Index < 0 || tc.Index >= maxToolCalls {
			return schema.ToolCallDelta{}, p.named(schema.Errorf(schema.CodeProviderError,
				"stream chunk has tool call index %d, outside 0..%d", tc.Index, maxToolCalls-1))
		}
		call = &callState{index: tc.Index}
		cs.calls = append(cs.calls, call)
	}
	// Only what the call did not have yet goes out, so that its first
	// piece has the id, type and name and later ones arguments alone,
	// even from a server that repeats them in every chunk.
	d := schema.ToolCallDelta{Index: tc.Index, Function: schema.FunctionCallDelta{Arguments: string(tc.Function.Arguments)}}
	if call.id == "" && tc.ID != "" {
		call.id, d.ID, d.Type = tc.ID, tc.ID, schema.ToolTypeFunction
	}
	if call.name == "" && tc.Function.Name != "" {
		call.name, d.Function.Name = tc.Function.Name, tc.Function.Name
	}
	call.args.WriteString(string(tc.Function.Arguments))
	return d, nil
}

// finishStream builds the whole response once data: [DONE] came: every
// choice in index order (choice 0 even when the server sent none), each
// with its tool calls in index order.
func (p *Provider) finishStream(st *streamState) (*schema.Response, error) {
	out := p.response(st.id, st.model, st.usage)
	if len(st.choices) == 0 || !slices.ContainsFunc(st.choices, func(c *choiceState) bool { return c.index == 0 }) {
		st.choices = append(st.choices, &choiceState{})
	}
	slices.SortStableFunc(st.choices, func(a, b *choiceState) int { return a.index - b.index })
	for _, cs := range st.choices {
		if cs.finish == finishError {
			return nil, p.named(schema.NewError(schema.CodeProviderError, `the server ended the stream with finish_reason "error"`))
		}
		msg := schema.Message{Role: schema.RoleAssistant, Content: schema.Content(cs.content.String())}
		slices.SortStableFunc(cs.calls, func(a, b *callState) int { return a.index - b.index })
		for _, c := range cs.calls {
			msg.ToolCalls = append(msg.ToolCalls, schema.ToolCall{ID: c.id, Type: schema.ToolTypeFunction,
				Function: schema.FunctionCall{Name: c.name, Arguments: c.args.String()}})
		}
		out.Choices = append(out.Choices, schema.Choice{Index: cs.index, Message: msg, FinishReason: mapFinish(cs.finish), Logprobs: cs.logprobs})
	}
	return out, nil
}

// isJSON reports whether the answer is a JSON document rather than SSE.
func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
