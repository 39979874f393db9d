package schema

import (
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Roles a message may have. They are OpenAI's; providers map them.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	// RoleTool is a tool's result, answering an assistant's tool call.
	RoleTool = "tool"
)

// Request is a chat-completion job, shaped as OpenAI's request body. Model is
// optional: the tier comes from the subject the job is published on.
type Request struct {
	Model       string    `json:"model,omitempty" msgpack:"model,omitempty"`
	Messages    []Message `json:"messages" msgpack:"messages"`
	MaxTokens   *int      `json:"max_tokens,omitempty" msgpack:"max_tokens,omitempty"`
	Temperature *float64  `json:"temperature,omitempty" msgpack:"temperature,omitempty"`
	TopP        *float64  `json:"top_p,omitempty" msgpack:"top_p,omitempty"`
	Stop        StopList  `json:"stop,omitempty" msgpack:"stop,omitempty"`
	Stream      bool      `json:"stream,omitempty" msgpack:"stream,omitempty"`
	User        string    `json:"user,omitempty" msgpack:"user,omitempty"`
	Metadata    Metadata  `json:"metadata,omitempty" msgpack:"metadata,omitempty"`
	// Tags route the job to deployments with one of them (tag routing; see
	// JobTags). Kept by llmq, not sent to providers.
	Tags TagList `json:"tags,omitempty" msgpack:"tags,omitempty"`
	// MaxCompletionTokens is OpenAI's newer name for MaxTokens; when both are
	// set MaxTokens wins.
	MaxCompletionTokens *int `json:"max_completion_tokens,omitempty" msgpack:"max_completion_tokens,omitempty"`

	// Tools the model may call, and how it must choose among them.
	Tools             []Tool      `json:"tools,omitempty" msgpack:"tools,omitempty"`
	ToolChoice        *ToolChoice `json:"tool_choice,omitempty" msgpack:"tool_choice,omitempty"`
	ParallelToolCalls *bool       `json:"parallel_tool_calls,omitempty" msgpack:"parallel_tool_calls,omitempty"`
	// ResponseFormat asks for JSON, or JSON matching a schema.
	ResponseFormat   *ResponseFormat `json:"response_format,omitempty" msgpack:"response_format,omitempty"`
	Seed             *int64          `json:"seed,omitempty" msgpack:"seed,omitempty"`
	PresencePenalty  *float64        `json:"presence_penalty,omitempty" msgpack:"presence_penalty,omitempty"`
	FrequencyPenalty *float64        `json:"frequency_penalty,omitempty" msgpack:"frequency_penalty,omitempty"`
	Logprobs         bool            `json:"logprobs,omitempty" msgpack:"logprobs,omitempty"`
	TopLogprobs      *int            `json:"top_logprobs,omitempty" msgpack:"top_logprobs,omitempty"`
	// N asks for that many choices (default 1).
	N               *int           `json:"n,omitempty" msgpack:"n,omitempty"`
	StreamOptions   *StreamOptions `json:"stream_options,omitempty" msgpack:"stream_options,omitempty"`
	ReasoningEffort string         `json:"reasoning_effort,omitempty" msgpack:"reasoning_effort,omitempty"`

	// Input makes the job an embedding job (see IsEmbedding): the texts
	// to embed, a string or an array of strings on the wire, as in
	// OpenAI's /v1/embeddings. Messages must then be empty.
	Input InputList `json:"input,omitempty" msgpack:"input,omitempty"`
	// Dimensions asks for embeddings of that many dimensions, where the
	// model can shorten them.
	Dimensions *int `json:"dimensions,omitempty" msgpack:"dimensions,omitempty"`
	// EncodingFormat is "float" (the default) or "base64".
	EncodingFormat string `json:"encoding_format,omitempty" msgpack:"encoding_format,omitempty"`
}

// IsEmbedding reports whether the job asks for embeddings rather than a
// chat completion: its body has input and no messages.
func (r *Request) IsEmbedding() bool { return r.Input != nil }

// Limit returns the output-token limit the request asks for, or 0 for none.
func (r *Request) Limit() int {
	switch {
	case r.MaxTokens != nil:
		return *r.MaxTokens
	case r.MaxCompletionTokens != nil:
		return *r.MaxCompletionTokens
	}
	return 0
}

// StopList holds stop sequences. On the wire it may be a single string or an
// array of strings, as in OpenAI's API.
type StopList []string

// UnmarshalJSON accepts a string or an array of strings.
func (s *StopList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = StopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("stop: want a string or an array of strings")
	}
	*s = many
	return nil
}

// DecodeMsgpack accepts a string or an array of strings.
func (s *StopList) DecodeMsgpack(d *msgpack.Decoder) error {
	v, err := d.DecodeInterface()
	if err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*s = nil
	case string:
		*s = StopList{v}
	case []any:
		out := make(StopList, 0, len(v))
		for _, e := range v {
			str, ok := e.(string)
			if !ok {
				return fmt.Errorf("stop: want a string or an array of strings")
			}
			out = append(out, str)
		}
		*s = out
	default:
		return fmt.Errorf("stop: want a string or an array of strings")
	}
	return nil
}
