package anthropic

import (
	"bytes"
	"encoding/json"

	"github.com/llmq/llmq/schema"
)

// JSONToolName is the tool that stands for response_format json_object
// and json_schema, as LiteLLM names it: the model answers by calling it,
// and its input is the reply's content.
const JSONToolName = "json_tool_call"

// emptyObjectSchema is the input_schema of a tool declared without
// parameters.
const emptyObjectSchema = `{"type":"object","properties":{}}`

// anyObjectSchema is the json_tool_call schema of json_object: any object.
const anyObjectSchema = `{"type":"object","additionalProperties":true,"properties":{}}`

// addTools maps tools, tool_choice, parallel_tool_calls and a JSON
// response_format onto w.
func (w *wireRequest) addTools(req *schema.Request) error {
	for i, t := range req.Tools {
		s, err := inputSchema(t.Function.Parameters)
		if err != nil {
			return schema.Errorf(schema.CodeBadRequest, "anthropic: tools[%d].function.parameters: %v", i, err)
		}
		w.Tools = append(w.Tools, wireTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: s})
	}
	if f := req.ResponseFormat; f != nil && (f.Type == schema.FormatJSONObject || f.Type == schema.FormatJSONSchema) {
		if req.Tool(JSONToolName) != nil {
			return schema.Errorf(schema.CodeBadRequest,
				"anthropic: tools: the name %q is reserved for response_format on this provider", JSONToolName)
		}
		tool := wireTool{Name: JSONToolName, InputSchema: json.RawMessage(anyObjectSchema)}
		if s := f.JSONSchema; s != nil && len(s.Schema) > 0 {
			in, err := inputSchema(s.Schema)
			if err != nil {
				return schema.Errorf(schema.CodeBadRequest, "anthropic: response_format.json_schema.schema: %v", err)
			}
			tool.InputSchema, tool.Description = in, s.Description
		}
		w.Tools = append(w.Tools, tool)
		w.jsonMode = true
	}
	w.ToolChoice = toolChoice(req.ToolChoice)
	// JSON mode without tools of the request's own forces the JSON tool,
	// unless thinking is on: the API refuses forced tool use with it.
	if w.jsonMode && len(req.Tools) == 0 && w.Thinking == nil {
		w.ToolChoice = &wireToolChoice{Type: "tool", Name: JSONToolName}
	}
	if p := req.ParallelToolCalls; p != nil && !*p && len(w.Tools) > 0 {
		if w.ToolChoice == nil {
			w.ToolChoice = &wireToolChoice{Type: "auto"}
		}
		w.ToolChoice.DisableParallelToolUse = w.ToolChoice.Type != "none"
	}
	if len(w.Tools) == 0 {
		w.ToolChoice = nil // the API wants tools with a tool_choice
	}
	return nil
}

// toolChoice maps OpenAI's tool_choice: required is any, a named function
// is tool.
func toolChoice(tc *schema.ToolChoice) *wireToolChoice {
	if tc == nil {
		return nil
	}
	switch tc.Mode {
	case schema.ToolChoiceNone:
		return &wireToolChoice{Type: "none"}
	case schema.ToolChoiceRequired:
		return &wireToolChoice{Type: "any"}
	case schema.ToolChoiceFunction:
		return &wireToolChoice{Type: "tool", Name: tc.Function}
	}
	return &wireToolChoice{Type: "auto"}
}

// inputSchema returns a tool's parameters as an input_schema: the API
// wants an object schema with "type": "object". Absent parameters are an
// empty object; a schema without a type gets "type": "object"; another
// type is refused.
func inputSchema(params schema.RawJSON) (json.RawMessage, error) {
	b := bytes.TrimSpace(params)
	if len(b) == 0 || string(b) == "null" {
		return json.RawMessage(emptyObjectSchema), nil
	}
	var head struct {
		Type json.RawMessage `json:"type"`
	}
	if b[0] != '{' || json.Unmarshal(b, &head) != nil {
		return nil, errSchemaNotObject
	}
	switch string(bytes.TrimSpace(head.Type)) {
	case `"object"`:
		return json.RawMessage(b), nil
	case "":
		rest := bytes.TrimSpace(b[1:])
		out := []byte(`{"type":"object"`)
		if len(rest) > 0 && rest[0] != '}' {
			out = append(out, ',')
		}
		return append(out, rest...), nil
	}
	return nil, errTypeNotObject
}

// schemaError is an error about a tool's schema.
type schemaError string

func (e schemaError) Error() string { return string(e) }

const (
	errSchemaNotObject = schemaError("must be a JSON Schema object")
	errTypeNotObject   = schemaError(`the schema's type must be "object" (Anthropic's input_schema)`)
)
