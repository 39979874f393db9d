package cohere

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/sse"
)

// wireEvent is the data of any stream event; each type fills its own
// fields.
type wireEvent struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Index int    `json:"index"` // of the content item or tool call
	Delta struct {
		Message struct {
			Content   json.RawMessage `json:"content"`    // content-delta: {"text": …}
			ToolCalls json.RawMessage `json:"tool_calls"` // tool-call-start and -delta: one call
		} `json:"message"`
		FinishReason string     `json:"finish_reason"` // message-end
		Usage        *wireUsage `json:"usage"`         // message-end
		Error        string     `json:"error"`         // message-end of a failed generation
	} `json:"delta"`
	Message  string          `json:"message"`  // an error object sent in the stream
	Logprobs json.RawMessage `json:"logprobs"` // content-delta: the piece's
}

// wireCallPiece is the call of a tool-call-start (id, type, name, empty
// arguments) or a tool-call-delta (a fragment of the arguments).
type wireCallPiece struct {
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// callPiece reads the event's call, sent as an object (or, leniently, an
// array of one).
func (e *wireEvent) callPiece() (wireCallPiece, error) {
	var c wireCallPiece
	raw := bytes.TrimSpace(e.Delta.Message.ToolCalls)
	if len(raw) > 0 && raw[0] == '[' {
		var list []wireCallPiece
		if err := json.Unmarshal(raw, &list); err != nil || len(list) != 1 {
			return c, fmt.Errorf("want one tool call, got %d bytes", len(raw))
		}
		return list[0], nil
	}
	if len(raw) == 0 {
		return c, nil
	}
	return c, json.Unmarshal(raw, &c)
}

// piece returns the logprobs of a content-delta, or nil.
func (e *wireEvent) piece() *wireLogprob {
	raw := bytes.TrimSpace(e.Logprobs)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var l wireLogprob
	if json.Unmarshal(raw, &l) != nil {
		return nil
	}
	return &l
}

// maxToolCalls bounds the calls of a stream: an index is untrusted.
const maxToolCalls = 128

// streamCall accumulates one streamed tool call.
type streamCall struct {
	index    int
	id, name string
	args     strings.Builder
}

// deltaText is the text of a content-delta; thinking deltas have none.
func (e *wireEvent) deltaText() string {
	var c struct {
		Text string `json:"text"`
	}
	if len(e.Delta.Message.Content) == 0 || json.Unmarshal(e.Delta.Message.Content, &c) != nil {
		return ""
	}
	return c.Text
}

// Stream sends req with "stream": true, calls emit with each piece as it
// arrives — text (with its logprobs when asked), and tool-call pieces in
// OpenAI's shape — and returns the whole reply, tool calls assembled,
// after message-end. A stream
// that ends before message-end is a connection_error; a message-end with
// finish_reason ERROR is a provider_error. When emit fails, the call is
// cancelled and emit's error returned as is.
func (p *Provider) Stream(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
	body, err := p.buildRequest(req, true)
	if err != nil {
		return nil, err
	}
	if emit == nil {
		emit = func(schema.ChunkChoice) error { return nil }
	}
	ctx, cancel := provider.CallContext(ctx, p.o.StreamTimeout)
	defer cancel()
	resp, err := p.post(ctx, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return p.readStream(ctx, sse.NewReader(provider.LimitReader(resp.Body, p.o.MaxStreamBytes, "stream")), emit)
}

// streamState accumulates a stream.
type streamState struct {
	id       string
	text     strings.Builder
	started  bool
	calls    []*streamCall
	logprobs *schema.Logprobs
}

func (p *Provider) readStream(ctx context.Context, r *sse.Reader, emit provider.Emit) (*schema.Response, error) {
	var st streamState
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, errStreamCut(st.started)
		}
		if err != nil {
			return nil, p.named(provider.TransportError(ctx, err))
		}
		data := ev.Data
		if len(data) == 0 || string(data) == "[DONE]" {
			continue
		}
		var e wireEvent
		if err := json.Unmarshal(data, &e); err != nil {
			// The SSE reader hands over a last event cut off by the end of
			// the stream as if it were whole: a cut, not a bad event.
			if _, next := r.Next(); next != nil {
				return nil, errStreamCut(st.started)
			}
			return nil, schema.Errorf(schema.CodeProviderError, "cohere: malformed stream event: %v", err)
		}
		typ := e.Type
		if typ == "" {
			typ = ev.Name
		}
		done, resp, err := p.onEvent(&st, typ, &e, emit)
		if err != nil || done {
			return resp, err
		}
	}
}

// onEvent folds one event into st and emits its piece; done is true at
// message-end, with the whole response.
func (p *Provider) onEvent(st *streamState, typ string, e *wireEvent, emit provider.Emit) (bool, *schema.Response, error) {
	switch typ {
	case "message-start":
		st.started = true
		if st.id == "" {
			st.id = e.ID
		}
	case "content-delta":
		t := e.deltaText()
		piece := provider.Text(t)
		if l := e.piece(); l != nil {
			tl := l.tokenLogprob()
			if st.logprobs == nil {
				st.logprobs = &schema.Logprobs{}
			}
			st.logprobs.Content = append(st.logprobs.Content, tl)
			piece.Logprobs = &schema.Logprobs{Content: []schema.TokenLogprob{tl}}
		}
		if t == "" && piece.Logprobs == nil {
			return false, nil, nil
		}
		st.text.WriteString(t)
		return false, nil, emit(piece)
	case "tool-call-start", "tool-call-delta":
		d, err := p.addCall(st, typ, e)
		if err != nil {
			return false, nil, err
		}
		return false, nil, emit(schema.ChunkChoice{Delta: schema.Delta{ToolCalls: []schema.ToolCallDelta{d}}})
	case "message-end":
		if e.Delta.FinishReason == finishError && e.Delta.Error != "" {
			return true, nil, schema.NewError(schema.CodeProviderError,
				"cohere: the generation failed: "+provider.Redact(provider.Snippet([]byte(e.Delta.Error), maxMessage), p.o.APIKey))
		}
		msg := schema.Message{Role: schema.RoleAssistant, Content: schema.Content(st.text.String())}
		for _, c := range st.calls {
			msg.ToolCalls = append(msg.ToolCalls, schema.ToolCall{ID: c.id, Type: schema.ToolTypeFunction,
				Function: schema.FunctionCall{Name: c.name, Arguments: c.args.String()}})
		}
		resp, err := p.response(st.id, msg, e.Delta.FinishReason, e.Delta.Usage, st.logprobs)
		return true, resp, err
	case "":
		if e.Message != "" { // an error object instead of an event
			return true, nil, schema.NewError(schema.CodeProviderError,
				"cohere: error in stream: "+provider.Redact(provider.Snippet([]byte(e.Message), maxMessage), p.o.APIKey))
		}
	default:
		// content-start/end, tool-plan-delta, tool-call-end, citation
		// events, debug, types added later.
	}
	return false, nil, nil
}

// addCall folds a tool-call-start (a new call: id and name) or a
// tool-call-delta (a fragment of its arguments) into st and returns the
// piece to emit, in OpenAI's shape.
func (p *Provider) addCall(st *streamState, typ string, e *wireEvent) (schema.ToolCallDelta, error) {
	c, err := e.callPiece()
	if err != nil {
		return schema.ToolCallDelta{}, schema.Errorf(schema.CodeProviderError, "cohere: malformed %s event: %v", typ, err)
	}
	if e.Index < 0 || e.Index >= maxToolCalls {
		return schema.ToolCallDelta{}, schema.Errorf(schema.CodeProviderError, "cohere: %s has tool call index %d, outside 0..%d", typ, e.Index, maxToolCalls-1)
	}
	var call *streamCall
	for _, sc := range st.calls {
		if sc.index == e.Index {
			call = sc
		}
	}
	d := schema.ToolCallDelta{Index: e.Index, Function: schema.FunctionCallDelta{Arguments: c.Function.Arguments}}
	switch {
	case typ == "tool-call-start" && call == nil:
		call = &streamCall{index: e.Index, id: c.ID, name: c.Function.Name}
		st.calls = append(st.calls, call)
		d.ID, d.Type, d.Function.Name = c.ID, schema.ToolTypeFunction, c.Function.Name
	case typ == "tool-call-start":
		return d, schema.Errorf(schema.CodeProviderError, "cohere: a second tool-call-start for index %d", e.Index)
	case call == nil:
		return d, schema.Errorf(schema.CodeProviderError, "cohere: tool-call-delta for index %d before its tool-call-start", e.Index)
	}
	call.args.WriteString(c.Function.Arguments)
	return d, nil
}

// errStreamCut is the error of a stream that ended before message-end.
func errStreamCut(started bool) *schema.Error {
	where := "before message-start"
	if started {
		where = "midway"
	}
	return schema.NewError(schema.CodeConnection, "cohere: stream ended "+where+", before message-end")
}
