package openai

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// chatRequest is the body of POST /chat/completions.
type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	MaxTokens           *int           `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int           `json:"max_completion_tokens,omitempty"`
	Temperature         *float64       `json:"temperature,omitempty"`
	TopP                *float64       `json:"top_p,omitempty"`
	Stop                []string       `json:"stop,omitempty"`
	User                string         `json:"user,omitempty"`
	Stream              bool           `json:"stream,omitempty"`
	StreamOptions       *streamOptions `json:"stream_options,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	Name    string `json:"name,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// body maps an llmq request onto the wire. The model is the adapter's;
// "developer" becomes "system", which OpenAI treats alike and which every
// compatible server's chat template knows. Of max_tokens and
// max_completion_tokens only the one the producer set is sent (max_tokens
// when both are). Metadata stays in llmq: OpenAI accepts it only with
// stored completions.
func (p *Provider) body(req *schema.Request, stream bool) *chatRequest {
	b := &chatRequest{
		Model:       p.opts.Model,
		Messages:    make([]chatMessage, len(req.Messages)),
		Temperature: req.Temperature,
		TopP:        req.TopP,
		User:        req.User,
	}
	for i, m := range req.Messages {
		role := m.Role
		if role == schema.RoleDeveloper {
			role = schema.RoleSystem
		}
		b.Messages[i] = chatMessage{Role: role, Content: string(m.Content), Name: m.Name}
	}
	switch {
	case req.MaxTokens != nil:
		b.MaxTokens = req.MaxTokens
	case req.MaxCompletionTokens != nil:
		b.MaxCompletionTokens = req.MaxCompletionTokens
	}
	if len(req.Stop) > 0 {
		b.Stop = append([]string(nil), req.Stop...)
	}
	if stream {
		b.Stream = true
		b.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	return b
}

// chatCompletion is a non-streamed reply. Error is set by servers that
// answer 200 with an error object.
type chatCompletion struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Content schema.Content `json:"content"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *wireUsage      `json:"usage"`
	Error json.RawMessage `json:"error"`
}

type wireUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// chunk is one chat.completion.chunk of a stream.
type chunk struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *wireUsage      `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// hasError reports whether raw is a present, non-null error member.
func hasError(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// decodeCompletion reads a 200 reply.
func (p *Provider) decodeCompletion(ctx context.Context, resp *http.Response) (*schema.Response, error) {
	data, err := io.ReadAll(provider.LimitReader(resp.Body, p.opts.MaxReplyBytes, "reply"))
	if err != nil {
		return nil, p.transportError(ctx, err)
	}
	var c chatCompletion
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, p.named(schema.Errorf(schema.CodeProviderError, "malformed reply (%d bytes): %v", len(data), err))
	}
	if hasError(c.Error) {
		return nil, p.apiError(0, resp.Header, data)
	}
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue
		}
		finish := ""
		if ch.FinishReason != nil {
			finish = *ch.FinishReason
		}
		if finish == finishError {
			return nil, p.named(schema.NewError(schema.CodeProviderError, `the server ended the completion with finish_reason "error"`))
		}
		return p.response(c.ID, c.Model, string(ch.Message.Content), finish, c.Usage), nil
	}
	return nil, p.named(schema.NewError(schema.CodeProviderError, "reply has no choice 0"))
}

// finishError is the finish reason OpenRouter and others give a completion
// that failed midway.
const finishError = "error"

// mapFinish maps a server's finish reason onto OpenAI's. OpenAI's own
// pass through; aliases some compatible servers use are translated; an
// absent or unknown reason is "stop".
func mapFinish(r string) string {
	switch r {
	case schema.FinishLength, "max_tokens", "model_length":
		return schema.FinishLength
	case schema.FinishContentFilter:
		return schema.FinishContentFilter
	case schema.FinishToolCalls, "function_call":
		return schema.FinishToolCalls
	}
	return schema.FinishStop
}
