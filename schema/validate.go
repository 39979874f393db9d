package schema

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Limits bound what a request may carry. The zero value means the
// defaults, each stated on its field.
type Limits struct {
	// MaxImageBytes caps one image given as a data: URI, decoded.
	// Default 20 MiB (OpenAI's limit per image).
	MaxImageBytes int64
}

// Default limits.
const (
	DefaultMaxImageBytes = 20 << 20
	// MaxTools is the most tools a request may declare (OpenAI's limit).
	MaxTools = 128
	// MaxInputs is the most texts one embedding job may carry (OpenAI's
	// limit).
	MaxInputs = 2048
	// MaxChoices is the most choices (n) a request may ask for.
	MaxChoices = 128
)

func (l Limits) withDefaults() Limits {
	if l.MaxImageBytes <= 0 {
		l.MaxImageBytes = DefaultMaxImageBytes
	}
	return l
}

// Validate reports the first thing wrong with the request as a bad_request
// error naming the field and index, or nil. It applies the default Limits.
func (r *Request) Validate() error { return r.Check(Limits{}) }

// Check is Validate with limits.
func (r *Request) Check(l Limits) error {
	l = l.withDefaults()
	if r.IsEmbedding() {
		return r.checkEmbedding()
	}
	if len(r.Messages) == 0 {
		return Errorf(CodeBadRequest, "messages: at least one message is required")
	}
	if err := r.checkMessages(l); err != nil {
		return err
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
	for _, p := range []struct {
		name string
		v    *float64
	}{{"presence_penalty", r.PresencePenalty}, {"frequency_penalty", r.FrequencyPenalty}} {
		if p.v != nil && !(*p.v >= -2 && *p.v <= 2) {
			return Errorf(CodeBadRequest, "%s: must be between -2 and 2, got %g", p.name, *p.v)
		}
	}
	if r.N != nil && (*r.N < 1 || *r.N > MaxChoices) {
		return Errorf(CodeBadRequest, "n: must be between 1 and %d, got %d", MaxChoices, *r.N)
	}
	if r.TopLogprobs != nil {
		if *r.TopLogprobs < 0 || *r.TopLogprobs > 20 {
			return Errorf(CodeBadRequest, "top_logprobs: must be between 0 and 20, got %d", *r.TopLogprobs)
		}
		if !r.Logprobs {
			return Errorf(CodeBadRequest, "top_logprobs: requires logprobs: true")
		}
	}
	switch r.ReasoningEffort {
	case "", "none", "minimal", "low", "medium", "high":
	default:
		return Errorf(CodeBadRequest, "reasoning_effort: %q is not one of none, minimal, low, medium, high", r.ReasoningEffort)
	}
	if r.Dimensions != nil || r.EncodingFormat != "" {
		return Errorf(CodeBadRequest, "dimensions, encoding_format: only for embedding jobs (with input)")
	}
	if err := r.checkTools(); err != nil {
		return err
	}
	return r.checkResponseFormat()
}

func (r *Request) checkMessages(l Limits) error {
	// Ids of the tool calls made so far, for the tool messages after them.
	var calls map[string]bool
	for i := range r.Messages {
		m := &r.Messages[i]
		switch m.Role {
		case RoleSystem, RoleDeveloper, RoleUser:
		case RoleAssistant:
			for j, tc := range m.ToolCalls {
				switch {
				case tc.ID == "":
					return Errorf(CodeBadRequest, "messages[%d].tool_calls[%d].id: required", i, j)
				case tc.Type != "" && tc.Type != ToolTypeFunction:
					return Errorf(CodeBadRequest, "messages[%d].tool_calls[%d].type: %q is not \"function\"", i, j, tc.Type)
				case tc.Function.Name == "":
					return Errorf(CodeBadRequest, "messages[%d].tool_calls[%d].function.name: required", i, j)
				}
				if calls == nil {
					calls = make(map[string]bool)
				}
				calls[tc.ID] = true
			}
		case RoleTool:
			switch {
			case m.ToolCallID == "":
				return Errorf(CodeBadRequest, "messages[%d].tool_call_id: required in a tool message", i)
			case !calls[m.ToolCallID]:
				return Errorf(CodeBadRequest, "messages[%d].tool_call_id: %q matches no tool call of an earlier assistant message", i, m.ToolCallID)
			}
		case "":
			return Errorf(CodeBadRequest, "messages[%d].role: required", i)
		default:
			return Errorf(CodeBadRequest, "messages[%d].role: %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
		if len(m.ToolCalls) > 0 && m.Role != RoleAssistant {
			return Errorf(CodeBadRequest, "messages[%d].tool_calls: only assistant messages make tool calls", i)
		}
		for j, p := range m.Parts {
			if p.Type != PartImageURL {
				continue
			}
			if m.Role != RoleUser {
				return Errorf(CodeBadRequest, "messages[%d].content[%d]: images are allowed in user messages only", i, j)
			}
			if err := checkImage(p.ImageURL, l); err != nil {
				return Errorf(CodeBadRequest, "messages[%d].content[%d].image_url.%v", i, j, err)
			}
		}
	}
	return nil
}

// checkImage checks an image's URL and detail; the error starts with the
// field's name.
func checkImage(img *ImageURL, l Limits) error {
	switch img.Detail {
	case "", "auto", "low", "high":
	default:
		return fmt.Errorf("detail: %q is not one of auto, low, high", img.Detail)
	}
	u := img.URL
	switch {
	case strings.HasPrefix(u, "https://"), strings.HasPrefix(u, "http://"):
		if len(u) > 8192 {
			return fmt.Errorf("url: longer than 8192 bytes")
		}
		return nil
	case strings.HasPrefix(u, "data:"):
		mime, data, err := ParseDataURI(u)
		if err != nil {
			return fmt.Errorf("url: %s", err.(*Error).Message)
		}
		if !strings.HasPrefix(mime, "image/") {
			return fmt.Errorf("url: data URI of type %q, want an image/…", mime)
		}
		if n := int64(base64.StdEncoding.DecodedLen(len(data))); n > l.MaxImageBytes {
			return fmt.Errorf("url: image of %d bytes is over the limit of %d", n, l.MaxImageBytes)
		}
		return nil
	case u == "":
		return fmt.Errorf("url: required")
	}
	return fmt.Errorf("url: want an http(s) URL or a data: URI")
}

// ParseDataURI splits a base64 data URI ("data:image/png;base64,AAAA")
// into its media type and base64 payload, without decoding it.
func ParseDataURI(u string) (mime, data string, err error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", "", Errorf(CodeBadRequest, "not a data: URI")
	}
	head, data, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", Errorf(CodeBadRequest, "data URI without a comma")
	}
	mime, ok = strings.CutSuffix(head, ";base64")
	if !ok {
		return "", "", Errorf(CodeBadRequest, "data URI must be base64 (\"data:image/png;base64,…\")")
	}
	if i := strings.IndexByte(mime, ';'); i >= 0 { // parameters such as charset
		mime = mime[:i]
	}
	if mime == "" || data == "" {
		return "", "", Errorf(CodeBadRequest, "data URI without a media type or data")
	}
	return mime, data, nil
}

func (r *Request) checkTools() error {
	if len(r.Tools) > MaxTools {
		return Errorf(CodeBadRequest, "tools: at most %d, got %d", MaxTools, len(r.Tools))
	}
	for i, t := range r.Tools {
		if t.Type != ToolTypeFunction {
			return Errorf(CodeBadRequest, "tools[%d].type: %q is not \"function\"", i, t.Type)
		}
		if !validFunctionName(t.Function.Name) {
			return Errorf(CodeBadRequest, "tools[%d].function.name: %q must be 1 to 64 letters, digits, _ or -", i, t.Function.Name)
		}
		if len(t.Function.Parameters) > 0 && !t.Function.Parameters.IsObject() {
			return Errorf(CodeBadRequest, "tools[%d].function.parameters: must be a JSON Schema object", i)
		}
		for j := range i {
			if r.Tools[j].Function.Name == t.Function.Name {
				return Errorf(CodeBadRequest, "tools[%d].function.name: %q is declared twice", i, t.Function.Name)
			}
		}
	}
	if tc := r.ToolChoice; tc != nil {
		switch tc.Mode {
		case ToolChoiceNone, ToolChoiceAuto:
		case ToolChoiceRequired:
			if len(r.Tools) == 0 {
				return Errorf(CodeBadRequest, "tool_choice: %q without tools", tc.Mode)
			}
		case ToolChoiceFunction:
			if r.Tool(tc.Function) == nil {
				return Errorf(CodeBadRequest, "tool_choice.function.name: %q is not one of the tools", tc.Function)
			}
		default:
			return Errorf(CodeBadRequest, "tool_choice: %q is not one of none, auto, required", tc.Mode)
		}
	}
	return nil
}

// Tool returns the declared tool named name, or nil.
func (r *Request) Tool(name string) *Tool {
	for i := range r.Tools {
		if r.Tools[i].Function.Name == name {
			return &r.Tools[i]
		}
	}
	return nil
}

func validFunctionName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (r *Request) checkResponseFormat() error {
	f := r.ResponseFormat
	if f == nil {
		return nil
	}
	switch f.Type {
	case FormatText, FormatJSONObject:
		if f.JSONSchema != nil {
			return Errorf(CodeBadRequest, "response_format.json_schema: only with type \"json_schema\"")
		}
	case FormatJSONSchema:
		s := f.JSONSchema
		switch {
		case s == nil:
			return Errorf(CodeBadRequest, "response_format.json_schema: required with type \"json_schema\"")
		case !validFunctionName(s.Name):
			return Errorf(CodeBadRequest, "response_format.json_schema.name: %q must be 1 to 64 letters, digits, _ or -", s.Name)
		case len(s.Schema) > 0 && !s.Schema.IsObject():
			return Errorf(CodeBadRequest, "response_format.json_schema.schema: must be a JSON Schema object")
		}
	case "":
		return Errorf(CodeBadRequest, "response_format.type: required")
	default:
		return Errorf(CodeBadRequest, "response_format.type: %q is not one of text, json_object, json_schema", f.Type)
	}
	return nil
}

func (r *Request) checkEmbedding() error {
	switch {
	case len(r.Messages) > 0:
		return Errorf(CodeBadRequest, "input: an embedding job has no messages (send input or messages, not both)")
	case len(r.Input) == 0:
		return Errorf(CodeBadRequest, "input: at least one text is required")
	case len(r.Input) > MaxInputs:
		return Errorf(CodeBadRequest, "input: at most %d texts, got %d", MaxInputs, len(r.Input))
	case r.Dimensions != nil && *r.Dimensions < 1:
		return Errorf(CodeBadRequest, "dimensions: must be at least 1, got %d", *r.Dimensions)
	case r.Stream:
		return Errorf(CodeBadRequest, "stream: embedding jobs are not streamed")
	case len(r.Tools) > 0 || r.ResponseFormat != nil:
		return Errorf(CodeBadRequest, "tools, response_format: only for chat jobs (with messages)")
	}
	for i, s := range r.Input {
		if s == "" {
			return Errorf(CodeBadRequest, "input[%d]: empty text", i)
		}
	}
	switch r.EncodingFormat {
	case "", EncodingFloat, EncodingBase64:
	default:
		return Errorf(CodeBadRequest, "encoding_format: %q is not one of float, base64", r.EncodingFormat)
	}
	return nil
}
