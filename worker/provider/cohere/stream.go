package cohere

import (
	"context"
	"encoding/json"
	"errors"
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
	Delta struct {
		Message struct {
			Content json.RawMessage `json:"content"` // content-delta: {"text": …}
		} `json:"message"`
		FinishReason string     `json:"finish_reason"` // message-end
		Usage        *wireUsage `json:"usage"`         // message-end
		Error        string     `json:"error"`         // message-end of a failed generation
	} `json:"delta"`
	Message string `json:"message"` // an error object sent in the stream
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

// Stream sends req with "stream": true, calls emit with each piece of text
// as it arrives and returns the whole reply after message-end. A stream
// that ends before message-end is a connection_error; a message-end with
// finish_reason ERROR is a provider_error. When emit fails, the call is
// cancelled and emit's error returned as is.
func (p *Provider) Stream(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
	body, err := buildRequest(p.o.Model, req, true)
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

func (p *Provider) readStream(ctx context.Context, r *sse.Reader, emit provider.Emit) (*schema.Response, error) {
	var (
		id      string
		text    strings.Builder
		started bool
	)
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, errStreamCut(started)
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
				return nil, errStreamCut(started)
			}
			return nil, schema.Errorf(schema.CodeProviderError, "cohere: malformed stream event: %v", err)
		}
		typ := e.Type
		if typ == "" {
			typ = ev.Name
		}
		switch typ {
		case "message-start":
			started = true
			if id == "" {
				id = e.ID
			}
		case "content-delta":
			t := e.deltaText()
			if t == "" {
				continue
			}
			text.WriteString(t)
			if err := emit(provider.Text(t)); err != nil {
				return nil, err
			}
		case "message-end":
			if e.Delta.FinishReason == finishError && e.Delta.Error != "" {
				return nil, schema.NewError(schema.CodeProviderError,
					"cohere: the generation failed: "+provider.Redact(provider.Snippet([]byte(e.Delta.Error), maxMessage), p.o.APIKey))
			}
			return p.response(id, text.String(), e.Delta.FinishReason, e.Delta.Usage)
		case "":
			if e.Message != "" { // an error object instead of an event
				return nil, schema.NewError(schema.CodeProviderError,
					"cohere: error in stream: "+provider.Redact(provider.Snippet([]byte(e.Message), maxMessage), p.o.APIKey))
			}
		default:
			// content-start/end, tool and citation events, debug, types
			// added later.
		}
	}
}

// errStreamCut is the error of a stream that ended before message-end.
func errStreamCut(started bool) *schema.Error {
	where := "before message-start"
	if started {
		where = "midway"
	}
	return schema.NewError(schema.CodeConnection, "cohere: stream ended "+where+", before message-end")
}
