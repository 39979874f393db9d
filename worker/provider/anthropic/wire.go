package anthropic

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// wireRequest is the body of POST /v1/messages.
type wireRequest struct {
	Model         string          `json:"model"`
	MaxTokens     int             `json:"max_tokens"`
	Messages      []wireMessage   `json:"messages"`
	System        string          `json:"system,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Metadata      *wireMetadata   `json:"metadata,omitempty"`
	Tools         []wireTool      `json:"tools,omitempty"`
	ToolChoice    *wireToolChoice `json:"tool_choice,omitempty"`
	Thinking      *wireThinking   `json:"thinking,omitempty"`

	// jsonMode tells that the json_tool_call tool stands for
	// response_format: its input is the reply's content.
	jsonMode bool
}

// wireMessage is one input message. Its content is a string, or content
// blocks when it holds more than text (tool use, tool results, images).
type wireMessage struct {
	Role    string      `json:"role"`
	Content wireContent `json:"content"`

	// toolTurn marks a user turn made of tool results, which the user
	// message after them joins.
	toolTurn bool
}

// wireContent is a message's content: Blocks when set, Text otherwise.
type wireContent struct {
	Text   string
	Blocks []wireBlock
}

// MarshalJSON writes the blocks, or the text as a string.
func (c wireContent) MarshalJSON() ([]byte, error) {
	if c.Blocks != nil {
		return json.Marshal(c.Blocks)
	}
	return json.Marshal(c.Text)
}

// wireBlock is a content block of a request: text, image, tool_use or
// tool_result. Only the fields of its type are set.
type wireBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *wireSource     `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   string          `json:"content,omitempty"`
}

// wireSource is an image block's source: base64 data or a URL the API
// fetches.
type wireSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// wireTool declares a client tool.
type wireTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// wireToolChoice is tool_choice: auto, any, tool (with name) or none.
type wireToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// wireThinking turns on extended thinking with a token budget.
type wireThinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
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

// replyBlock is a content block of a reply: text and tool_use are read;
// thinking and server-tool blocks are skipped.
type replyBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// wireReply is a Message object: the non-streamed reply, and the message
// of a message_start event.
type wireReply struct {
	ID         string       `json:"id"`
	Type       string       `json:"type"`
	Role       string       `json:"role"`
	Model      string       `json:"model"`
	Content    []replyBlock `json:"content"`
	StopReason string       `json:"stop_reason"`
	Usage      wireUsage    `json:"usage"`
}

// reply collects a reply's message: its text, its tool calls, and the
// input of the json_tool_call tool in JSON mode.
type reply struct {
	jsonMode bool
	text     strings.Builder
	calls    []schema.ToolCall
	jsonUsed bool
}

// toolUse adds a whole tool_use block: a tool call, or in JSON mode the
// reply's content.
func (r *reply) toolUse(id, name, args string) {
	if r.jsonMode && name == JSONToolName {
		r.text.WriteString(args)
		r.jsonUsed = true
		return
	}
	r.calls = append(r.calls, schema.ToolCall{ID: id, Type: schema.ToolTypeFunction,
		Function: schema.FunctionCall{Name: name, Arguments: args}})
}

// message returns the assistant message and the finish reason for stop.
func (r *reply) message(stop string) (schema.Message, string) {
	finish := finishReason(stop)
	if r.jsonUsed && len(r.calls) == 0 && finish == schema.FinishToolCalls {
		finish = schema.FinishStop // the JSON answer is the reply, not a call
	}
	return schema.Message{Role: schema.RoleAssistant, Content: schema.Content(r.text.String()), ToolCalls: r.calls}, finish
}

func (r *wireReply) response(jsonMode bool) *schema.Response {
	out := reply{jsonMode: jsonMode}
	for _, c := range r.Content {
		switch c.Type {
		case "text":
			out.text.WriteString(c.Text)
		case "tool_use":
			out.toolUse(c.ID, c.Name, compactJSON(c.Input))
		}
	}
	msg, finish := out.message(r.StopReason)
	return newResponse(r.ID, r.Model, msg, finish, r.Usage.prompt(), r.Usage.OutputTokens)
}

// compactJSON returns raw, a tool's input, as compact JSON text: OpenAI's
// arguments string. An absent input is "{}".
func compactJSON(raw []byte) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "{}"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

func newResponse(id, model string, msg schema.Message, finish string, prompt, completion int) *schema.Response {
	if id == "" {
		id = provider.NewID()
	}
	return &schema.Response{
		ID:      id,
		Model:   model,
		Choices: []schema.Choice{{Message: msg, FinishReason: finish}},
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
