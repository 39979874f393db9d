package sim

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/llmq/llmq/schema"
)

// The simulator answers tools and structured outputs deterministically, so
// that demos and tests can run a whole tool loop without a model:
//
//   - a request with tools (and tool_choice not "none") whose last message
//     is not a tool result calls one tool — the forced one, else the first
//     — with arguments built from its parameters' required properties
//     (see example);
//   - a request whose last message is a tool result answers text that
//     quotes the result;
//   - response_format json_schema answers a JSON object built the same way
//     from the schema, json_object answers {"answer": "<words>"}.

// maxSchemaDepth bounds how deep example follows nested objects.
const maxSchemaDepth = 8

// jsonSchema is the part of a JSON Schema example reads.
type jsonSchema struct {
	Type       any                        `json:"type"`
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
	Enum       []json.RawMessage          `json:"enum"`
	Items      json.RawMessage            `json:"items"`
}

// example returns a value of the JSON Schema raw: an object with its
// required properties (every property when none is required), a string
// of word for strings, 1 for numbers, true for booleans, the first enum
// value when there is an enum.
func example(raw []byte, word string, depth int) any {
	var s jsonSchema
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil || depth > maxSchemaDepth {
		return map[string]any{}
	}
	if len(s.Enum) > 0 {
		return s.Enum[0]
	}
	typ, _ := s.Type.(string)
	if list, ok := s.Type.([]any); ok && len(list) > 0 {
		typ, _ = list[0].(string)
	}
	switch typ {
	case "string":
		return word
	case "number", "integer":
		return 1
	case "boolean":
		return true
	case "null":
		return nil
	case "array":
		if len(s.Items) > 0 {
			return []any{example(s.Items, word, depth+1)}
		}
		return []any{}
	}
	obj := map[string]any{}
	names := s.Required
	if len(names) == 0 {
		for name := range s.Properties {
			names = append(names, name)
		}
	}
	for _, name := range names {
		obj[name] = example(s.Properties[name], word, depth+1)
	}
	return obj
}

// exampleJSON is example as JSON text.
func exampleJSON(raw []byte, word string) string {
	b, err := json.Marshal(example(raw, word, 0))
	if err != nil {
		return "{}"
	}
	return string(b)
}

// lastWord is the last word of the last user message, without
// punctuation: what string arguments are filled with ("weather in Paris?"
// gives "Paris").
func lastWord(req *schema.Request) string {
	words := seedWords(req)
	w := strings.Trim(words[len(words)-1], ".,;:!?\"'()")
	if w == "" {
		return "sim"
	}
	return w
}

// toolToCall returns the tool the reply calls, or nil when it answers
// text: the request has tools, tool_choice is not none, and its last
// message is not a tool result.
func toolToCall(req *schema.Request) *schema.Tool {
	if len(req.Tools) == 0 || len(req.Messages) == 0 || req.Messages[len(req.Messages)-1].Role == schema.RoleTool {
		return nil
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Mode {
		case schema.ToolChoiceNone:
			return nil
		case schema.ToolChoiceFunction:
			if t := req.Tool(tc.Function); t != nil {
				return t
			}
		}
	}
	return &req.Tools[0]
}

// toolResult returns the text answering a request that ends with tool
// results: "<name> returned <content>" for each, or "" when the last
// message is no tool result.
func toolResult(req *schema.Request) string {
	var parts []string
	for i := len(req.Messages) - 1; i >= 0 && req.Messages[i].Role == schema.RoleTool; i-- {
		m := &req.Messages[i]
		parts = append([]string{callName(req, m.ToolCallID) + " returned " + m.Text()}, parts...)
	}
	return strings.Join(parts, "; ")
}

// callName is the function name of the tool call id, or the id.
func callName(req *schema.Request, id string) string {
	for _, m := range req.Messages {
		for _, tc := range m.ToolCalls {
			if tc.ID == id {
				return tc.Function.Name
			}
		}
	}
	return id
}

// structured returns the JSON content a response_format asks for, and
// whether it asks for any.
func structured(req *schema.Request, words []string) (string, bool) {
	f := req.ResponseFormat
	if f == nil {
		return "", false
	}
	switch f.Type {
	case schema.FormatJSONSchema:
		if f.JSONSchema != nil {
			return exampleJSON(f.JSONSchema.Schema, lastWord(req)), true
		}
	case schema.FormatJSONObject:
		b, _ := json.Marshal(map[string]string{"answer": strings.Join(words, " ")})
		return string(b), true
	}
	return "", false
}

// callID is the id of the simulator's n-th tool call.
func callID(n uint64) string { return "call_sim_" + strconv.FormatUint(n, 10) }
