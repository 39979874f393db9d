package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
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
		if text := out.Text(); text != "" {
			if err := emit(provider.Text(text)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return p.readStream(ctx, resp, emit)
}

// streamState accumulates a stream.
type streamState struct {
	id, model, finish string
	content           strings.Builder
	usage             *wireUsage
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
			if st.finish == finishError {
				return nil, p.named(schema.NewError(schema.CodeProviderError, `the server ended the stream with finish_reason "error"`))
			}
			return p.response(st.id, st.model, st.content.String(), st.finish, st.usage), nil
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
		if err := st.add(&c, emit); err != nil {
			return nil, err
		}
	}
}

// add folds one chunk into the state and emits its content.
func (st *streamState) add(c *chunk, emit provider.Emit) error {
	if st.id == "" {
		st.id = c.ID
	}
	if st.model == "" {
		st.model = c.Model
	}
	if c.Usage != nil {
		st.usage = c.Usage
	}
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			st.finish = *ch.FinishReason
		}
		if ch.Delta.Content == "" {
			continue
		}
		st.content.WriteString(ch.Delta.Content)
		if err := emit(provider.Text(ch.Delta.Content)); err != nil {
			return err
		}
	}
	return nil
}

// isJSON reports whether the answer is a JSON document rather than SSE.
func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
