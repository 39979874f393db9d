package schema

import (
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Tool is a tool the model may call: OpenAI's {"type":"function",
// "function":{…}}. Function is the only type.
type Tool struct {
	Type     string   `json:"type" msgpack:"type"`
	Function Function `json:"function" msgpack:"function"`
}

// Function declares a function tool.
type Function struct {
	Name        string `json:"name" msgpack:"name"`
	Description string `json:"description,omitempty" msgpack:"description,omitempty"`
	// Parameters is a JSON Schema of an object, as written.
	Parameters RawJSON `json:"parameters,omitempty" msgpack:"parameters,omitempty"`
	// Strict asks for arguments that match Parameters exactly (OpenAI's
	// structured outputs).
	Strict *bool `json:"strict,omitempty" msgpack:"strict,omitempty"`
}

// ToolTypeFunction is the type of every tool and tool call.
const ToolTypeFunction = "function"

// ToolCall is a call the model made, in an assistant message.
type ToolCall struct {
	ID       string       `json:"id" msgpack:"id"`
	Type     string       `json:"type" msgpack:"type"`
	Function FunctionCall `json:"function" msgpack:"function"`
}

// FunctionCall names the function called and its arguments, a JSON object
// as a string (OpenAI's shape; providers that take an object get it
// parsed).
type FunctionCall struct {
	Name      string `json:"name" msgpack:"name"`
	Arguments string `json:"arguments" msgpack:"arguments"`
}

// ToolCallDelta is a piece of a streamed tool call, in OpenAI's chunk
// shape: the first piece of call Index carries ID, Type and the function's
// Name; the pieces after it carry fragments of Arguments, to be
// concatenated.
type ToolCallDelta struct {
	Index    int               `json:"index" msgpack:"index"`
	ID       string            `json:"id,omitempty" msgpack:"id,omitempty"`
	Type     string            `json:"type,omitempty" msgpack:"type,omitempty"`
	Function FunctionCallDelta `json:"function" msgpack:"function"`
}

// FunctionCallDelta is the function part of a ToolCallDelta.
type FunctionCallDelta struct {
	Name      string `json:"name,omitempty" msgpack:"name,omitempty"`
	Arguments string `json:"arguments" msgpack:"arguments"`
}

// Tool choice modes (ToolChoice.Mode).
const (
	ToolChoiceNone     = "none"
	ToolChoiceAuto     = "auto"
	ToolChoiceRequired = "required"
	// ToolChoiceFunction forces the call of ToolChoice.Function.
	ToolChoiceFunction = "function"
)

// ToolChoice is OpenAI's tool_choice: "none", "auto", "required", or
// {"type":"function","function":{"name":…}}, which forces that function.
type ToolChoice struct {
	Mode     string // one of the ToolChoice… constants
	Function string // the function forced, with Mode ToolChoiceFunction
}

type toolChoiceObject struct {
	Type     string `json:"type" msgpack:"type"`
	Function struct {
		Name string `json:"name" msgpack:"name"`
	} `json:"function" msgpack:"function"`
}

func (t *ToolChoice) object() toolChoiceObject {
	var o toolChoiceObject
	o.Type = ToolTypeFunction
	o.Function.Name = t.Function
	return o
}

func (t *ToolChoice) fromObject(o toolChoiceObject) error {
	if o.Type != ToolTypeFunction || o.Function.Name == "" {
		return fmt.Errorf(`tool_choice: want "none", "auto", "required" or {"type":"function","function":{"name":…}}`)
	}
	*t = ToolChoice{Mode: ToolChoiceFunction, Function: o.Function.Name}
	return nil
}

// MarshalJSON writes the mode as a string, or the forced function's object.
func (t ToolChoice) MarshalJSON() ([]byte, error) {
	if t.Mode == ToolChoiceFunction {
		return json.Marshal(t.object())
	}
	return json.Marshal(t.Mode)
}

// UnmarshalJSON accepts a mode string or a function object.
func (t *ToolChoice) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = ToolChoice{Mode: s}
		return nil
	}
	var o toolChoiceObject
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf(`tool_choice: want "none", "auto", "required" or {"type":"function","function":{"name":…}}`)
	}
	return t.fromObject(o)
}

// EncodeMsgpack writes the mode as a string, or the forced function's map.
func (t *ToolChoice) EncodeMsgpack(e *msgpack.Encoder) error {
	if t.Mode != ToolChoiceFunction {
		return e.EncodeString(t.Mode)
	}
	w := mapWriter{e: e}
	w.begin(2)
	w.str("type", ToolTypeFunction)
	w.key("function")
	w.begin(1)
	w.str("name", t.Function)
	return w.err
}

// DecodeMsgpack accepts a mode string or a function map.
func (t *ToolChoice) DecodeMsgpack(d *msgpack.Decoder) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if isMsgpackString(c) {
		s, err := d.DecodeString()
		if err != nil {
			return err
		}
		*t = ToolChoice{Mode: s}
		return nil
	}
	var o toolChoiceObject
	if err := o.decodeMsgpack(d); err != nil {
		return fmt.Errorf(`tool_choice: want "none", "auto", "required" or {"type":"function","function":{"name":…}}`)
	}
	return t.fromObject(o)
}

func (o *toolChoiceObject) decodeMsgpack(d *msgpack.Decoder) error {
	var buf [32]byte
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	for range n {
		key, err := decodeKey(d, buf[:])
		if err != nil {
			return err
		}
		switch string(key) {
		case "type":
			o.Type, err = decodeCommon(d, buf[:])
		case "function":
			var m int
			if m, err = decodeMapHeader(d); err != nil {
				return err
			}
			for range m {
				if key, err = decodeKey(d, buf[:]); err != nil {
					return err
				}
				if string(key) == "name" {
					o.Function.Name, err = d.DecodeString()
				} else {
					err = d.Skip()
				}
				if err != nil {
					return err
				}
			}
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Response format types (ResponseFormat.Type).
const (
	FormatText       = "text"
	FormatJSONObject = "json_object"
	FormatJSONSchema = "json_schema"
)

// ResponseFormat is OpenAI's response_format: plain text, any JSON object,
// or JSON matching a schema.
type ResponseFormat struct {
	Type       string      `json:"type" msgpack:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty" msgpack:"json_schema,omitempty"`
}

// JSONSchema is the schema a json_schema response must match.
type JSONSchema struct {
	Name        string  `json:"name" msgpack:"name"`
	Description string  `json:"description,omitempty" msgpack:"description,omitempty"`
	Schema      RawJSON `json:"schema,omitempty" msgpack:"schema,omitempty"`
	Strict      *bool   `json:"strict,omitempty" msgpack:"strict,omitempty"`
}

// StreamOptions is OpenAI's stream_options. llmq always ends a stream with
// usage; IncludeUsage is kept so that OpenAI-compatible providers and the
// gateway's clients see what was asked.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage,omitempty" msgpack:"include_usage,omitempty"`
}

// TokenLogprob is the log probability of one output token (OpenAI's
// logprobs.content[i]).
type TokenLogprob struct {
	Token       string       `json:"token" msgpack:"token"`
	Logprob     float64      `json:"logprob" msgpack:"logprob"`
	Bytes       []int        `json:"bytes,omitempty" msgpack:"bytes,omitempty"`
	TopLogprobs []TopLogprob `json:"top_logprobs" msgpack:"top_logprobs"`
}

// TopLogprob is one of the most likely tokens at a position.
type TopLogprob struct {
	Token   string  `json:"token" msgpack:"token"`
	Logprob float64 `json:"logprob" msgpack:"logprob"`
	Bytes   []int   `json:"bytes,omitempty" msgpack:"bytes,omitempty"`
}

// Logprobs are a choice's token log probabilities.
type Logprobs struct {
	Content []TokenLogprob `json:"content" msgpack:"content"`
}
