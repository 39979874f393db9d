package ollamatest

import (
	"encoding/json"
	"time"
)

// DefaultModel is the model a fake host has when Config.Models is empty.
const DefaultModel = "qwen2.5-coder:14b"

// BusyMessage is Ollama's error message, with status 503, when a model's
// queue is full.
const BusyMessage = "server busy, please try again.  maximum pending requests exceeded"

// ChatRequest is the body of POST /api/chat as Ollama defines it. The fake
// decodes it strictly: an unknown field is a 400.
type ChatRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	// Stream is nil when the field was absent, which means true.
	Stream      *bool           `json:"stream,omitempty"`
	Format      json.RawMessage `json:"format,omitempty"`
	KeepAlive   json.RawMessage `json:"keep_alive,omitempty"`
	Tools       []Tool          `json:"tools,omitempty"`
	Options     map[string]any  `json:"options,omitempty"`
	Think       json.RawMessage `json:"think,omitempty"`
	Truncate    *bool           `json:"truncate,omitempty"`
	Shift       *bool           `json:"shift,omitempty"`
	Logprobs    bool            `json:"logprobs,omitempty"`
	TopLogprobs int             `json:"top_logprobs,omitempty"`
}

// Streaming reports whether the request asks for a streamed reply, which
// Ollama gives unless "stream" is false.
func (r *ChatRequest) Streaming() bool { return r.Stream == nil || *r.Stream }

// Message is one turn of a chat, as Ollama defines it.
type Message struct {
	Role      string     `json:"role"`
	Content   string     `json:"content"`
	Thinking  string     `json:"thinking,omitempty"`
	Images    []string   `json:"images,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	ToolName  string     `json:"tool_name,omitempty"`
}

// Tool declares a tool, as Ollama takes it (OpenAI's shape, without
// strict).
type Tool struct {
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

// ToolFunction is a tool's function. Parameters is a JSON Schema object.
type ToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ToolCall is a call a model made: in a reply, and in an assistant message
// sent back. Ollama gives no id (ID is set only when a test scripts one,
// as newer hosts may send); Arguments is a JSON object, not a string.
type ToolCall struct {
	ID       string           `json:"id,omitempty"`
	Function ToolCallFunction `json:"function"`
}

// ToolCallFunction names the function called and its arguments.
type ToolCallFunction struct {
	Index     int             `json:"index"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// EmbedRequest is the body of POST /api/embed. Input is a string or an
// array of strings.
type EmbedRequest struct {
	Model      string          `json:"model"`
	Input      json.RawMessage `json:"input"`
	Truncate   *bool           `json:"truncate,omitempty"`
	Dimensions int             `json:"dimensions,omitempty"`
	KeepAlive  json.RawMessage `json:"keep_alive,omitempty"`
	Options    map[string]any  `json:"options,omitempty"`
}

// EmbedResponse is the reply of POST /api/embed.
type EmbedResponse struct {
	Model           string      `json:"model"`
	Embeddings      [][]float32 `json:"embeddings"`
	TotalDuration   int64       `json:"total_duration,omitempty"`
	LoadDuration    int64       `json:"load_duration,omitempty"`
	PromptEvalCount int         `json:"prompt_eval_count,omitempty"`
}

// ChatResponse is a non-streamed reply, or one line of a streamed one.
type ChatResponse struct {
	Model              string    `json:"model"`
	CreatedAt          time.Time `json:"created_at"`
	Message            Message   `json:"message"`
	DoneReason         string    `json:"done_reason,omitempty"`
	Done               bool      `json:"done"`
	TotalDuration      int64     `json:"total_duration,omitempty"`
	LoadDuration       int64     `json:"load_duration,omitempty"`
	PromptEvalCount    int       `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration int64     `json:"prompt_eval_duration,omitempty"`
	EvalCount          int       `json:"eval_count,omitempty"`
	EvalDuration       int64     `json:"eval_duration,omitempty"`
}

// TagsResponse is the reply of GET /api/tags.
type TagsResponse struct {
	Models []ListedModel `json:"models"`
}

// ListedModel is one model of GET /api/tags.
type ListedModel struct {
	Name       string       `json:"name"`
	Model      string       `json:"model"`
	ModifiedAt time.Time    `json:"modified_at"`
	Size       int64        `json:"size"`
	Digest     string       `json:"digest"`
	Details    ModelDetails `json:"details"`
}

// PsResponse is the reply of GET /api/ps: the models loaded now.
type PsResponse struct {
	Models []RunningModel `json:"models"`
}

// RunningModel is one loaded model of GET /api/ps.
type RunningModel struct {
	Name      string       `json:"name"`
	Model     string       `json:"model"`
	Size      int64        `json:"size"`
	Digest    string       `json:"digest"`
	Details   ModelDetails `json:"details"`
	ExpiresAt time.Time    `json:"expires_at"`
	SizeVRAM  int64        `json:"size_vram"`
}

// ModelDetails describes a listed model.
type ModelDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

// errorBody is every Ollama error body.
type errorBody struct {
	Error string `json:"error"`
}

// optionKind returns the JSON type of an option Ollama knows, or "" for
// an unknown option.
func optionKind(key string) string {
	switch key {
	case "numa", "use_mmap":
		return "boolean"
	case "num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "num_keep", "seed",
		"num_predict", "top_k", "repeat_last_n":
		return "integer"
	case "top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty",
		"frequency_penalty":
		return "float32"
	case "stop":
		return "array"
	}
	return ""
}
