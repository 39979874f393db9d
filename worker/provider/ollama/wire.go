package ollama

import (
	"encoding/json"
	"fmt"

	"github.com/llmq/llmq/schema"
)

// chatRequest is the body of POST /api/chat.
type chatRequest struct {
	Model    string        `json:"model"`
	Messages []chatMessage `json:"messages"`
	// Stream is always sent: Ollama streams when it is absent.
	Stream  bool         `json:"stream"`
	Options *chatOptions `json:"options,omitempty"`
}

// chatMessage is one turn as Ollama takes it.
type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chatOptions are the sampling options llmq maps. Pointers keep explicit
// zeros (temperature 0) on the wire.
type chatOptions struct {
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	NumPredict  *int     `json:"num_predict,omitempty"`
	Stop        []string `json:"stop,omitempty"`
}

// chatResponse is a non-streamed reply, or one line of a streamed one. An
// error line carries only Error.
type chatResponse struct {
	Model   string `json:"model"`
	Message struct {
		Role      string            `json:"role"`
		Content   string            `json:"content"`
		ToolCalls []json.RawMessage `json:"tool_calls"`
	} `json:"message"`
	Done            bool   `json:"done"`
	DoneReason      string `json:"done_reason"`
	PromptEvalCount int    `json:"prompt_eval_count"`
	EvalCount       int    `json:"eval_count"`
	TotalDuration   int64  `json:"total_duration"`
	Error           any    `json:"error"`
}

// tagsResponse is the reply of GET /api/tags.
type tagsResponse struct {
	Models []struct {
		Name  string `json:"name"`
		Model string `json:"model"`
	} `json:"models"`
}

// ollamaRole maps an OpenAI role onto Ollama's. Ollama takes system,
// user, assistant and tool; OpenAI's developer is a system prompt.
func ollamaRole(role string) (string, bool) {
	switch role {
	case schema.RoleSystem, schema.RoleDeveloper:
		return "system", true
	case schema.RoleUser, schema.RoleAssistant, "tool":
		return role, true
	}
	return "", false
}

// chatBody maps an OpenAI request onto Ollama's chat body. Name, user and
// metadata have no Ollama equivalent and are dropped.
func (p *Provider) chatBody(req *schema.Request, stream bool) (*chatRequest, error) {
	if req == nil || len(req.Messages) == 0 {
		return nil, schema.NewError(schema.CodeBadRequest, "ollama: messages: at least one message is required")
	}
	body := &chatRequest{Model: p.model, Stream: stream, Messages: make([]chatMessage, len(req.Messages))}
	for i, m := range req.Messages {
		role, ok := ollamaRole(m.Role)
		if !ok {
			return nil, schema.Errorf(schema.CodeBadRequest,
				"ollama: messages[%d].role: %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
		body.Messages[i] = chatMessage{Role: role, Content: string(m.Content)}
	}
	opts := chatOptions{Temperature: req.Temperature, TopP: req.TopP}
	if n := req.Limit(); n > 0 {
		opts.NumPredict = &n
	}
	if len(req.Stop) > 0 {
		opts.Stop = append([]string(nil), req.Stop...)
	}
	if opts.Temperature != nil || opts.TopP != nil || opts.NumPredict != nil || opts.Stop != nil {
		body.Options = &opts
	}
	return body, nil
}

// finishReason maps Ollama's done_reason onto OpenAI's finish_reason. It
// reports false for reasons that mean no completion was made ("load",
// "unload"), which Ollama gives for requests without messages.
func finishReason(r *chatResponse) (string, error) {
	if len(r.Message.ToolCalls) > 0 {
		return schema.FinishToolCalls, nil
	}
	switch r.DoneReason {
	case "stop", "":
		return schema.FinishStop, nil
	case "length":
		return schema.FinishLength, nil
	case "load", "unload":
		return "", schema.Errorf(schema.CodeProviderError,
			"ollama: reply has done_reason %q and no completion", r.DoneReason)
	}
	// Reasons newer Ollama versions may add end the completion normally.
	return schema.FinishStop, nil
}

// errorText returns the error message of an error value decoded from
// {"error": ...}: a string, or an object with a message.
func errorText(v any) string {
	switch e := v.(type) {
	case nil:
		return ""
	case string:
		return e
	case map[string]any:
		if m, ok := e["message"].(string); ok {
			return m
		}
	}
	b, _ := json.Marshal(v)
	return fmt.Sprintf("%s", b)
}
