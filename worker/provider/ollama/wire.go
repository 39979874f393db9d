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
	Stream bool `json:"stream"`
	// Format is "json" or a JSON Schema object (response_format).
	Format json.RawMessage `json:"format,omitempty"`
	Tools  []chatTool      `json:"tools,omitempty"`
	// Think turns a thinking model's reasoning on or off
	// (reasoning_effort).
	Think   *bool        `json:"think,omitempty"`
	Options *chatOptions `json:"options,omitempty"`
	// KeepAlive is how long the host keeps the model loaded after the
	// call (the deployment's keep_alive); absent: the host's default.
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
}

// chatMessage is one turn as Ollama takes it.
type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Images are base64 images (no data: prefix), for vision models.
	Images []string `json:"images,omitempty"`
	// ToolCalls are an assistant's calls, arguments as JSON objects.
	ToolCalls []wireToolCall `json:"tool_calls,omitempty"`
	// ToolName names the function whose result a tool message carries.
	ToolName string `json:"tool_name,omitempty"`
}

// chatTool declares a function tool, in OpenAI's shape.
type chatTool struct {
	Type     string       `json:"type"`
	Function toolFunction `json:"function"`
}

// toolFunction is a tool's function. Ollama has no strict mode.
type toolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// wireToolCall is a tool call as Ollama writes and reads it: no type, the
// arguments a JSON object rather than a string. Newer hosts add an id and
// the call's index; older ones give neither.
type wireToolCall struct {
	ID       string `json:"id,omitempty"`
	Function struct {
		Index     *int            `json:"index,omitempty"`
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// chatOptions are the sampling options llmq maps. Pointers keep explicit
// zeros (temperature 0) on the wire.
type chatOptions struct {
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	NumPredict  *int     `json:"num_predict,omitempty"`
	Stop        []string `json:"stop,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
	Presence    *float64 `json:"presence_penalty,omitempty"`
	Frequency   *float64 `json:"frequency_penalty,omitempty"`
}

// chatResponse is a non-streamed reply, or one line of a streamed one. An
// error line carries only Error.
type chatResponse struct {
	Model   string `json:"model"`
	Message struct {
		Role      string         `json:"role"`
		Content   string         `json:"content"`
		ToolCalls []wireToolCall `json:"tool_calls"`
	} `json:"message"`
	Done            bool   `json:"done"`
	DoneReason      string `json:"done_reason"`
	PromptEvalCount int    `json:"prompt_eval_count"`
	EvalCount       int    `json:"eval_count"`
	TotalDuration   int64  `json:"total_duration"`
	// LoadDuration is the time (ns) the host spent loading the model for
	// this call: a few ms when it was loaded already.
	LoadDuration int64 `json:"load_duration"`
	Error        any   `json:"error"`
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

// finishReason maps Ollama's done_reason onto OpenAI's finish_reason. It
// fails for reasons that mean no completion was made ("load",
// "unload"), which Ollama gives for requests without messages. A reply
// with tool calls finishes with "tool_calls".
func finishReason(doneReason string, toolCalls bool) (string, error) {
	switch {
	case toolCalls:
		return schema.FinishToolCalls, nil
	case doneReason == "load" || doneReason == "unload":
		return "", schema.Errorf(schema.CodeProviderError,
			"ollama: reply has done_reason %q and no completion", doneReason)
	}
	switch doneReason {
	case "stop", "":
		return schema.FinishStop, nil
	case "length":
		return schema.FinishLength, nil
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
