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
)

// Message is one turn of a conversation.
type Message struct {
	Role    string  `json:"role" msgpack:"role"`
	Content Content `json:"content" msgpack:"content"`
	Name    string  `json:"name,omitempty" msgpack:"name,omitempty"`
}

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
}

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

// Validate reports the first thing wrong with the request as a bad_request
// error, or nil.
func (r *Request) Validate() error {
	if len(r.Messages) == 0 {
		return Errorf(CodeBadRequest, "messages: at least one message is required")
	}
	for i, m := range r.Messages {
		switch m.Role {
		case RoleSystem, RoleDeveloper, RoleUser, RoleAssistant:
		case "":
			return Errorf(CodeBadRequest, "messages[%d].role: required", i)
		default:
			return Errorf(CodeBadRequest, "messages[%d].role: %q is not one of system, developer, user, assistant", i, m.Role)
		}
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return Errorf(CodeBadRequest, "max_tokens: must be at least 1, got %d", *r.MaxTokens)
	}
	if r.MaxCompletionTokens != nil && *r.MaxCompletionTokens < 1 {
		return Errorf(CodeBadRequest, "max_completion_tokens: must be at least 1, got %d", *r.MaxCompletionTokens)
	}
	if r.Temperature != nil && !(*r.Temperature >= 0 && *r.Temperature <= 2) { // NaN too
		return Errorf(CodeBadRequest, "temperature: must be between 0 and 2, got %g", *r.Temperature)
	}
	if r.TopP != nil && !(*r.TopP >= 0 && *r.TopP <= 1) { // NaN too
		return Errorf(CodeBadRequest, "top_p: must be between 0 and 1, got %g", *r.TopP)
	}
	if len(r.Stop) > 4 {
		return Errorf(CodeBadRequest, "stop: at most 4 sequences, got %d", len(r.Stop))
	}
	return nil
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

// Content is a message's text. On the wire it may be a string or, as OpenAI
// allows, an array of parts; only parts of type "text" are accepted, and
// they are joined.
type Content string

// UnmarshalJSON accepts a string, null, or an array of text parts.
func (c *Content) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Content(s)
		return nil
	case string(b) == "null":
		*c = ""
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("content: want a string or an array of text parts")
	}
	var out []byte
	for _, p := range parts {
		if p.Type != "text" {
			return fmt.Errorf("content: part type %q is not supported (only \"text\")", p.Type)
		}
		out = append(out, p.Text...)
	}
	*c = Content(out)
	return nil
}
