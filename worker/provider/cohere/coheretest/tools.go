package coheretest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
)

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// parseTools reads tools (OpenAI's shape: type "function", a function
// with a name and a parameters object schema, both required), strict_tools
// and tool_choice (REQUIRED or NONE, and only with tools).
func parseTools(body map[string]json.RawMessage, req *request) *Failure {
	if raw, ok := body["tools"]; ok {
		var list []struct {
			Type     string                     `json:"type"`
			Function map[string]json.RawMessage `json:"function"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return bad("tools must be an array of tools")
		}
		for i, t := range list {
			tl, f := parseTool(i, t.Type, t.Function)
			if f != nil {
				return f
			}
			req.Tools = append(req.Tools, tl)
		}
	}
	if raw, ok := body["strict_tools"]; ok {
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return bad("strict_tools must be a boolean")
		}
	}
	if raw, ok := body["tool_choice"]; ok {
		if json.Unmarshal(raw, &req.ToolChoice) != nil || (req.ToolChoice != "REQUIRED" && req.ToolChoice != "NONE") {
			return bad("tool_choice must be one of REQUIRED, NONE; got %s", bytes.TrimSpace(raw))
		}
		if len(req.Tools) == 0 {
			return bad("tool_choice can only be used with tools")
		}
	}
	return nil
}

func parseTool(i int, typ string, fn map[string]json.RawMessage) (tool, *Failure) {
	if typ != "function" {
		return tool{}, bad("tools[%d].type must be \"function\", got %q", i, typ)
	}
	if fn == nil {
		return tool{}, bad("tools[%d].function is required", i)
	}
	for k := range fn {
		switch k {
		case "name", "description", "parameters":
		default:
			return tool{}, bad("tools[%d].function: %s is not a valid field", i, k)
		}
	}
	var t tool
	if json.Unmarshal(fn["name"], &t.Name) != nil || !toolName.MatchString(t.Name) {
		return tool{}, bad("tools[%d].function.name is required: letters, digits, _ and - (at most 64)", i)
	}
	p, ok := fn["parameters"]
	if !ok {
		return tool{}, bad("tools[%d].function.parameters is required", i)
	}
	if f := objectSchema(fmt.Sprintf("tools[%d].function.parameters", i), p); f != nil {
		return tool{}, f
	}
	t.Parameters = p
	return t, nil
}

// objectSchema wants a JSON Schema of type "object".
func objectSchema(at string, raw json.RawMessage) *Failure {
	var s struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(raw, &s) != nil || s.Type != "object" {
		return bad("%s must be a JSON Schema of type \"object\"", at)
	}
	return nil
}

// parseOptions reads response_format ({type: text|json_object,
// json_schema?}, the schema only with json_object), seed and logprobs.
func parseOptions(body map[string]json.RawMessage, req *request) *Failure {
	if raw, ok := body["response_format"]; ok {
		var rf map[string]json.RawMessage
		if json.Unmarshal(raw, &rf) != nil || rf == nil {
			return bad("response_format must be an object")
		}
		var typ string
		_ = json.Unmarshal(rf["type"], &typ)
		for k := range rf {
			if k != "type" && k != "json_schema" {
				return bad("response_format: %s is not a valid field", k)
			}
		}
		switch typ {
		case "text":
			if _, ok := rf["json_schema"]; ok {
				return bad("response_format.json_schema is only valid with type json_object")
			}
		case "json_object":
			if js, ok := rf["json_schema"]; ok {
				if f := objectSchema("response_format.json_schema", js); f != nil {
					return f
				}
			}
		default:
			return bad("response_format.type must be one of text, json_object; got %q", typ)
		}
		_, req.JSONSchema = rf["json_schema"]
		req.ResponseFormat = typ
	}
	if raw, ok := body["seed"]; ok {
		var n int64
		if json.Unmarshal(raw, &n) != nil {
			return bad("seed must be an integer")
		}
	}
	if raw, ok := body["logprobs"]; ok {
		if json.Unmarshal(raw, &req.Logprobs) != nil {
			return bad("logprobs must be a boolean")
		}
	}
	return nil
}
