package cohere

import (
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// wireRequest is the body of POST /v2/chat.
type wireRequest struct {
	Model         string        `json:"model"`
	Messages      []wireMessage `json:"messages"`
	MaxTokens     int           `json:"max_tokens,omitempty"`
	Temperature   *float64      `json:"temperature,omitempty"`
	P             *float64      `json:"p,omitempty"`
	StopSequences []string      `json:"stop_sequences,omitempty"`
	Stream        bool          `json:"stream"`
}

type wireMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Cohere's bounds of p; OpenAI's top_p may be 0 or 1, Cohere's may not.
const (
	minP = 0.01
	maxP = 0.99
)

// buildRequest maps an OpenAI-shaped request onto a v2 chat request for
// model.
func buildRequest(model string, req *schema.Request, stream bool) (*wireRequest, error) {
	if req == nil {
		return nil, schema.NewError(schema.CodeBadRequest, "cohere: no request")
	}
	w := &wireRequest{Model: model, Stream: stream}
	for i, m := range req.Messages {
		role := m.Role
		switch role {
		case schema.RoleDeveloper:
			role = schema.RoleSystem
		case schema.RoleSystem, schema.RoleUser, schema.RoleAssistant:
		default:
			return nil, schema.Errorf(schema.CodeBadRequest,
				"cohere: messages[%d].role: %q is not one of system, developer, user, assistant", i, m.Role)
		}
		w.Messages = append(w.Messages, wireMessage{Role: role, Content: string(m.Content)})
	}
	if len(w.Messages) == 0 {
		return nil, schema.NewError(schema.CodeBadRequest, "cohere: no messages")
	}
	if n := req.Limit(); n > 0 {
		w.MaxTokens = n
	}
	if req.Temperature != nil {
		t := max(*req.Temperature, 0)
		w.Temperature = &t
	}
	if req.TopP != nil {
		p := min(max(*req.TopP, minP), maxP)
		w.P = &p
	}
	for _, s := range req.Stop {
		if s != "" {
			w.StopSequences = append(w.StopSequences, s)
		}
	}
	return w, nil
}

// wireContent is one content item of a reply's message.
type wireContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type wireReplyMessage struct {
	Role    string        `json:"role"`
	Content []wireContent `json:"content"`
}

// text joins the message's text items; thinking and tool calls are not
// part of an OpenAI message's content.
func (m wireReplyMessage) text() string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// wireCounts is a pair of token counts.
type wireCounts struct {
	InputTokens  *float64 `json:"input_tokens"`
	OutputTokens *float64 `json:"output_tokens"`
}

// wireUsage is a reply's usage: billed_units are what Cohere charges
// (the prompt without its chat template), tokens what the model saw.
type wireUsage struct {
	BilledUnits *wireCounts `json:"billed_units"`
	Tokens      *wireCounts `json:"tokens"`
}

// counts returns the billed counts, else the model's.
func (u *wireUsage) counts() (prompt, completion int) {
	if u == nil {
		return 0, 0
	}
	pick := func(get func(*wireCounts) *float64) int {
		for _, c := range []*wireCounts{u.BilledUnits, u.Tokens} {
			if c != nil {
				if v := get(c); v != nil {
					return int(*v)
				}
			}
		}
		return 0
	}
	return pick(func(c *wireCounts) *float64 { return c.InputTokens }),
		pick(func(c *wireCounts) *float64 { return c.OutputTokens })
}

// wireReply is a non-streamed reply.
type wireReply struct {
	ID           string           `json:"id"`
	FinishReason string           `json:"finish_reason"`
	Message      wireReplyMessage `json:"message"`
	Usage        *wireUsage       `json:"usage"`
}

// Cohere's finish reasons.
const (
	finishComplete     = "COMPLETE"
	finishStopSequence = "STOP_SEQUENCE"
	finishMaxTokens    = "MAX_TOKENS"
	finishToolCall     = "TOOL_CALL"
	finishError        = "ERROR"
	finishTimeout      = "TIMEOUT"
)

// response builds the Response of a finished generation, or the error of
// one Cohere ended with ERROR or TIMEOUT.
func (p *Provider) response(id, text, finish string, u *wireUsage) (*schema.Response, error) {
	switch finish {
	case finishError:
		return nil, schema.NewError(schema.CodeProviderError, "cohere: the generation ended with finish_reason ERROR")
	case finishTimeout:
		return nil, schema.NewError(schema.CodeTimeout, "cohere: the generation ended with finish_reason TIMEOUT")
	}
	if id == "" {
		id = provider.NewID()
	}
	prompt, completion := u.counts()
	return &schema.Response{
		ID:    id,
		Model: p.o.Model, // Cohere's reply does not name the model
		Choices: []schema.Choice{{
			Message:      schema.Message{Role: schema.RoleAssistant, Content: schema.Content(text)},
			FinishReason: finishReason(finish),
		}},
		Usage: schema.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion},
	}, nil
}

// finishReason maps Cohere's finish_reason onto OpenAI's.
func finishReason(r string) string {
	switch r {
	case finishMaxTokens:
		return schema.FinishLength
	case finishToolCall:
		return schema.FinishToolCalls
	default: // COMPLETE, STOP_SEQUENCE, reasons added later
		return schema.FinishStop
	}
}
