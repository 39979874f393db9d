package anthropic

import (
	"strings"
	"unicode"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// wireRequest is the body of POST /v1/messages.
type wireRequest struct {
	Model         string        `json:"model"`
	MaxTokens     int           `json:"max_tokens"`
	Messages      []wireMessage `json:"messages"`
	System        string        `json:"system,omitempty"`
	StopSequences []string      `json:"stop_sequences,omitempty"`
	Temperature   *float64      `json:"temperature,omitempty"`
	TopP          *float64      `json:"top_p,omitempty"`
	Stream        bool          `json:"stream,omitempty"`
	Metadata      *wireMetadata `json:"metadata,omitempty"`
}

type wireMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type wireMetadata struct {
	UserID string `json:"user_id"`
}

// wireUsage is the usage block of a reply and of message_start.
type wireUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// prompt counts every input token, cached or not, as OpenAI's
// prompt_tokens does.
func (u wireUsage) prompt() int {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

type wireBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// wireReply is a Message object: the non-streamed reply, and the message
// of a message_start event.
type wireReply struct {
	ID         string      `json:"id"`
	Type       string      `json:"type"`
	Role       string      `json:"role"`
	Model      string      `json:"model"`
	Content    []wireBlock `json:"content"`
	StopReason string      `json:"stop_reason"`
	Usage      wireUsage   `json:"usage"`
}

// text joins the reply's text blocks; other blocks (thinking, tool_use)
// are not part of an OpenAI message's content.
func (r *wireReply) text() string {
	var b strings.Builder
	for _, c := range r.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

func (r *wireReply) response() *schema.Response {
	return newResponse(r.ID, r.Model, r.text(), r.StopReason, r.Usage.prompt(), r.Usage.OutputTokens)
}

func newResponse(id, model, text, stopReason string, prompt, completion int) *schema.Response {
	if id == "" {
		id = provider.NewID()
	}
	return &schema.Response{
		ID:    id,
		Model: model,
		Choices: []schema.Choice{{
			Message:      schema.Message{Role: schema.RoleAssistant, Content: schema.Content(text)},
			FinishReason: finishReason(stopReason),
		}},
		Usage: schema.Usage{
			PromptTokens:     prompt,
			CompletionTokens: completion,
			TotalTokens:      prompt + completion,
		},
	}
}

// finishReason maps Anthropic's stop_reason onto OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return schema.FinishLength
	case "tool_use":
		return schema.FinishToolCalls
	case "refusal":
		return schema.FinishContentFilter
	default: // end_turn, stop_sequence, pause_turn, none yet
		return schema.FinishStop
	}
}

// buildRequest maps an OpenAI-shaped request onto a Messages request for
// model.
func buildRequest(model string, req *schema.Request, stream bool) (*wireRequest, error) {
	if req == nil {
		return nil, schema.NewError(schema.CodeBadRequest, "anthropic: no request")
	}
	w := &wireRequest{Model: model, MaxTokens: req.Limit(), Stream: stream}
	if w.MaxTokens <= 0 {
		w.MaxTokens = DefaultMaxTokens
	}
	var system []string
	for i, m := range req.Messages {
		switch m.Role {
		case schema.RoleSystem, schema.RoleDeveloper:
			if s := string(m.Content); strings.TrimSpace(s) != "" {
				system = append(system, s)
			}
		case schema.RoleUser, schema.RoleAssistant:
			w.Messages = append(w.Messages, wireMessage{Role: m.Role, Content: string(m.Content)})
		default:
			return nil, schema.Errorf(schema.CodeBadRequest,
				"anthropic: messages[%d].role: %q is not one of system, developer, user, assistant", i, m.Role)
		}
	}
	if len(w.Messages) == 0 {
		return nil, schema.NewError(schema.CodeBadRequest,
			"anthropic: the Messages API needs at least one user message besides the system prompt")
	}
	// A final assistant message is a prefill the model continues; the API
	// refuses one that ends in whitespace.
	if last := &w.Messages[len(w.Messages)-1]; last.Role == schema.RoleAssistant {
		last.Content = strings.TrimRightFunc(last.Content, unicode.IsSpace)
	}
	w.System = strings.Join(system, "\n\n")
	if req.Temperature != nil {
		t := min(max(*req.Temperature, 0), 1) // OpenAI allows 0..2, Anthropic 0..1
		w.Temperature = &t
	}
	if req.TopP != nil {
		tp := *req.TopP
		w.TopP = &tp
	}
	for _, s := range req.Stop {
		if strings.TrimSpace(s) != "" { // the API refuses whitespace-only ones
			w.StopSequences = append(w.StopSequences, s)
		}
	}
	if req.User != "" {
		w.Metadata = &wireMetadata{UserID: req.User}
	}
	return w, nil
}
