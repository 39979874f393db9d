package openai

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// chatRequest is the body of POST /chat/completions. Every field the
// schema holds is passed through as the producer sent it: the schema's
// types already write OpenAI's shape.
type chatRequest struct {
	Model               string                 `json:"model"`
	Messages            any                    `json:"messages"` // []textMessage or []chatMessage
	MaxTokens           *int                   `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int                   `json:"max_completion_tokens,omitempty"`
	Temperature         *float64               `json:"temperature,omitempty"`
	TopP                *float64               `json:"top_p,omitempty"`
	Stop                []string               `json:"stop,omitempty"`
	User                string                 `json:"user,omitempty"`
	Stream              bool                   `json:"stream,omitempty"`
	StreamOptions       *streamOptions         `json:"stream_options,omitempty"`
	Tools               []schema.Tool          `json:"tools,omitempty"`
	ToolChoice          *schema.ToolChoice     `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool                  `json:"parallel_tool_calls,omitempty"`
	ResponseFormat      *schema.ResponseFormat `json:"response_format,omitempty"`
	Seed                *int64                 `json:"seed,omitempty"`
	PresencePenalty     *float64               `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64               `json:"frequency_penalty,omitempty"`
	Logprobs            bool                   `json:"logprobs,omitempty"`
	TopLogprobs         *int                   `json:"top_logprobs,omitempty"`
	N                   *int                   `json:"n,omitempty"`
	ReasoningEffort     string                 `json:"reasoning_effort,omitempty"`
}

// textMessage is a message whose content is a string: every message of
// a request without images or tool-call-only assistant messages is sent
// as one, which encodes faster than chatMessage.
type textMessage struct {
	Role       string            `json:"role"`
	Content    string            `json:"content"`
	Name       string            `json:"name,omitempty"`
	ToolCalls  []schema.ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string            `json:"tool_call_id,omitempty"`
}

// chatMessage is a message on the wire when some message of the request
// is not text alone. Content is a *schema.Content (a string), a
// *[]schema.ContentPart (text and image parts), or nil (null: an
// assistant message that only calls tools); pointers into the request
// avoid copies.
type chatMessage struct {
	Role       string            `json:"role"`
	Content    any               `json:"content"`
	Name       string            `json:"name,omitempty"`
	ToolCalls  []schema.ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string            `json:"tool_call_id,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// body maps an llmq request onto the wire. The model is the adapter's;
// "developer" becomes "system", which OpenAI treats alike and which every
// compatible server's chat template knows. Of max_tokens and
// max_completion_tokens only the one the producer set is sent (max_tokens
// when both are). Metadata stays in llmq: OpenAI accepts it only with
// stored completions. Image parts go as they are (OpenAI and the
// compatible servers fetch URLs themselves). A stream always asks for
// stream_options.include_usage, so that the last chunk has the usage;
// stream_options is never sent without stream, which OpenAI refuses.
func (p *Provider) body(req *schema.Request, stream bool) *chatRequest {
	b := &chatRequest{
		Model:             p.opts.Model,
		Messages:          messages(req.Messages),
		Temperature:       req.Temperature,
		TopP:              req.TopP,
		User:              req.User,
		Tools:             req.Tools,
		ToolChoice:        req.ToolChoice,
		ParallelToolCalls: req.ParallelToolCalls,
		ResponseFormat:    req.ResponseFormat,
		Seed:              req.Seed,
		PresencePenalty:   req.PresencePenalty,
		FrequencyPenalty:  req.FrequencyPenalty,
		Logprobs:          req.Logprobs,
		TopLogprobs:       req.TopLogprobs,
		N:                 req.N,
		ReasoningEffort:   req.ReasoningEffort,
	}
	switch {
	case req.MaxTokens != nil:
		b.MaxTokens = req.MaxTokens
	case req.MaxCompletionTokens != nil:
		b.MaxCompletionTokens = req.MaxCompletionTokens
	}
	if len(req.Stop) > 0 {
		b.Stop = req.Stop
	}
	if stream {
		b.Stream = true
		b.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	return b
}

// messages maps the messages: "developer" becomes "system"; content goes
// as a string, as parts when the message has images, and as null for an
// assistant message that only calls tools.
func messages(in []schema.Message) any {
	plain := true
	for i := range in {
		m := &in[i]
		plain = plain && m.Parts == nil && (m.Content != "" || len(m.ToolCalls) == 0)
	}
	if plain {
		out := make([]textMessage, len(in))
		for i := range in {
			m := &in[i]
			out[i] = textMessage{Role: role(m.Role), Content: string(m.Content), Name: m.Name, ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID}
		}
		return out
	}
	out := make([]chatMessage, len(in))
	for i := range in {
		m := &in[i]
		w := chatMessage{Role: role(m.Role), Name: m.Name, ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID}
		switch {
		case m.Parts != nil:
			w.Content = &m.Parts
		case m.Content == "" && len(m.ToolCalls) > 0:
			// null, as OpenAI writes a message that only calls tools
		default:
			w.Content = &m.Content
		}
		out[i] = w
	}
	return out
}

func role(r string) string {
	if r == schema.RoleDeveloper {
		return schema.RoleSystem
	}
	return r
}

// chatCompletion is a non-streamed reply. Error is set by servers that
// answer 200 with an error object.
type chatCompletion struct {
	ID      string          `json:"id"`
	Model   string          `json:"model"`
	Choices []wireChoice    `json:"choices"`
	Usage   *wireUsage      `json:"usage"`
	Error   json.RawMessage `json:"error"`
}

// wireChoice is one choice of a non-streamed reply.
type wireChoice struct {
	Index   int `json:"index"`
	Message struct {
		Content   schema.Content `json:"content"`
		ToolCalls []wireToolCall `json:"tool_calls"`
	} `json:"message"`
	FinishReason *string          `json:"finish_reason"`
	Logprobs     *schema.Logprobs `json:"logprobs"`
}

// wireToolCall is a tool call or a piece of one. Type may be missing
// (some compatible servers leave it out); it is always "function".
type wireToolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string        `json:"name"`
		Arguments wireArguments `json:"arguments"`
	} `json:"function"`
}

// wireArguments is a call's arguments: OpenAI's JSON string, or the
// object itself, which a few compatible servers send, kept as its text.
type wireArguments string

// UnmarshalJSON accepts a string, null, or any other JSON value as text.
func (a *wireArguments) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = wireArguments(s)
	case string(b) == "null":
		*a = ""
	default:
		*a = wireArguments(b)
	}
	return nil
}

type wireUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// chunk is one chat.completion.chunk of a stream.
type chunk struct {
	ID      string          `json:"id"`
	Model   string          `json:"model"`
	Choices []chunkChoice   `json:"choices"`
	Usage   *wireUsage      `json:"usage"`
	Error   json.RawMessage `json:"error"`
}

type chunkChoice struct {
	Index int `json:"index"`
	Delta struct {
		Content   string         `json:"content"`
		ToolCalls []wireToolCall `json:"tool_calls"`
	} `json:"delta"`
	FinishReason *string          `json:"finish_reason"`
	Logprobs     *schema.Logprobs `json:"logprobs"`
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
	if len(c.Choices) > maxChoices {
		return nil, p.named(schema.Errorf(schema.CodeProviderError, "reply has %d choices, more than %d", len(c.Choices), maxChoices))
	}
	out := p.response(c.ID, c.Model, c.Usage)
	zero := false
	for i := range c.Choices {
		ch := &c.Choices[i]
		zero = zero || ch.Index == 0
		finish := ""
		if ch.FinishReason != nil {
			finish = *ch.FinishReason
		}
		if finish == finishError {
			return nil, p.named(schema.NewError(schema.CodeProviderError, `the server ended the completion with finish_reason "error"`))
		}
		msg := schema.Message{Role: schema.RoleAssistant, Content: ch.Message.Content}
		for _, tc := range ch.Message.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, schema.ToolCall{ID: tc.ID, Type: schema.ToolTypeFunction,
				Function: schema.FunctionCall{Name: tc.Function.Name, Arguments: string(tc.Function.Arguments)}})
		}
		out.Choices = append(out.Choices, schema.Choice{Index: ch.Index, Message: msg, FinishReason: mapFinish(finish), Logprobs: ch.Logprobs})
	}
	if !zero {
		return nil, p.named(schema.NewError(schema.CodeProviderError, "reply has no choice 0"))
	}
	slices.SortStableFunc(out.Choices, func(a, b schema.Choice) int { return a.Index - b.Index })
	return out, nil
}

// maxChoices and maxToolCalls bound what a reply may hold: OpenAI's
// largest n, and far more calls than any model makes in one turn.
const (
	maxChoices   = 128
	maxToolCalls = 128
)

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
