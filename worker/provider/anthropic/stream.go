package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/sse"
)

// wireEvent is the data of any stream event; each event type fills its
// own fields.
type wireEvent struct {
	Type         string      `json:"type"`
	Message      *wireReply  `json:"message"`       // message_start
	Index        int         `json:"index"`         // content_block_*
	ContentBlock *replyBlock `json:"content_block"` // content_block_start
	Delta        struct {
		Type        string `json:"type"` // content_block_delta: text_delta, input_json_delta, …
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"` // message_delta
	} `json:"delta"`
	Usage *deltaUsage `json:"usage"` // message_delta
}

// deltaUsage is message_delta's usage: cumulative counts, of which only
// output_tokens is always there.
type deltaUsage struct {
	InputTokens              *int `json:"input_tokens"`
	OutputTokens             *int `json:"output_tokens"`
	CacheCreationInputTokens *int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int `json:"cache_read_input_tokens"`
}

// merge applies the counts d carries onto u.
func (d *deltaUsage) merge(u *wireUsage) {
	set := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	set(&u.InputTokens, d.InputTokens)
	set(&u.OutputTokens, d.OutputTokens)
	set(&u.CacheCreationInputTokens, d.CacheCreationInputTokens)
	set(&u.CacheReadInputTokens, d.CacheReadInputTokens)
}

// Stream sends req with "stream": true, calls emit with each piece as it
// arrives — text, and tool calls in OpenAI's chunk shape — and returns the
// whole reply after message_stop. An error event inside the stream is
// returned as a typed error; a stream that ends before message_stop is a
// connection_error. When emit fails, the call is cancelled and emit's
// error returned as is.
func (p *Provider) Stream(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
	body, err := buildRequest(&p.o, p.o.Model, req, true)
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
	s := &streamState{reply: reply{jsonMode: body.jsonMode}, emit: emit}
	return p.readStream(ctx, sse.NewReader(provider.LimitReader(resp.Body, p.o.MaxStreamBytes, "stream")), s)
}

func (p *Provider) readStream(ctx context.Context, r *sse.Reader, s *streamState) (*schema.Response, error) {
	var (
		msg     wireReply
		started bool
	)
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, errStreamCut(streamPlace(started))
		}
		if err != nil {
			return nil, p.named(provider.TransportError(ctx, err))
		}
		name := ev.Name
		var data wireEvent
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			// The SSE reader hands over a last event cut off by the end
			// of the stream as if it were whole: a cut, not a bad event.
			if _, next := r.Next(); next != nil {
				return nil, errStreamCut(streamPlace(started))
			}
			return nil, schema.Errorf(schema.CodeProviderError, "anthropic: malformed %q event: %v", name, err)
		}
		if name == "" {
			name = data.Type
		}
		switch name {
		case "message_start":
			started = true
			if data.Message != nil {
				msg = *data.Message
			}
		case "content_block_start":
			err = s.start(data.Index, data.ContentBlock)
		case "content_block_delta":
			err = s.delta(&data)
		case "content_block_stop":
			err = s.stop(data.Index)
		case "message_delta":
			if data.Delta.StopReason != "" {
				msg.StopReason = data.Delta.StopReason
			}
			if data.Usage != nil {
				data.Usage.merge(&msg.Usage)
			}
		case "message_stop":
			if err := s.stopAll(); err != nil {
				return nil, err
			}
			m, finish := s.reply.message(msg.StopReason)
			return newResponse(msg.ID, msg.Model, m, finish, msg.Usage.prompt(), msg.Usage.OutputTokens), nil
		case "error":
			return nil, eventError(ev.Data, p.o.APIKey)
		default:
			// ping and event types added later.
		}
		if err != nil {
			return nil, err
		}
	}
}

func streamPlace(started bool) string {
	if started {
		return "midway"
	}
	return "before message_start"
}
