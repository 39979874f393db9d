package openaitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// functionName is the pattern OpenAI wants of a function's name.
var functionName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// parseTools reads tools, tool_choice and parallel_tool_calls. A tool is
// {"type":"function","function":{name, description?, parameters?,
// strict?}}; parameters, when given, must be a JSON Schema of an object.
// tool_choice and parallel_tool_calls are refused without tools, and a
// named tool_choice must name a declared function.
func parseTools(body map[string]json.RawMessage, req *request) *Failure {
	if raw, ok := body["tools"]; ok && !isNull(raw) {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return invalidType("tools", "an array", raw)
		}
		for i, t := range list {
			tl, f := parseTool(fmt.Sprintf("tools[%d]", i), t)
			if f != nil {
				return f
			}
			req.Tools = append(req.Tools, tl)
		}
	}
	if raw, ok := body["tool_choice"]; ok && !isNull(raw) {
		if len(req.Tools) == 0 {
			f := BadRequest("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", "tool_choice")
			return &f
		}
		if f := parseToolChoice(raw, req); f != nil {
			return f
		}
	}
	if raw, ok := body["parallel_tool_calls"]; ok && !isNull(raw) {
		if len(req.Tools) == 0 {
			f := BadRequest("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.", "parallel_tool_calls")
			return &f
		}
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return invalidType("parallel_tool_calls", "a boolean", raw)
		}
		req.ParallelToolCalls = &b
	}
	return nil
}

func parseTool(at string, raw json.RawMessage) (tool, *Failure) {
	var t struct {
		Type     *string                     `json:"type"`
		Function *map[string]json.RawMessage `json:"function"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return tool{}, invalidType(at, "an object", raw)
	}
	switch {
	case t.Type == nil:
		return tool{}, ptr(missing(at + ".type"))
	case *t.Type != "function":
		return tool{}, invalidValue(at+".type", *t.Type, "'function' and 'custom'")
	case t.Function == nil:
		return tool{}, ptr(missing(at + ".function"))
	}
	fn := *t.Function
	for _, k := range sortedKeys(fn) {
		switch k {
		case "name", "description", "parameters", "strict":
		default:
			f := BadRequest(fmt.Sprintf("Unrecognized request argument supplied: %s.function.%s", at, k), at+".function."+k)
			return tool{}, &f
		}
	}
	var tl tool
	name, ok := fn["name"]
	if !ok || isNull(name) {
		return tool{}, ptr(missing(at + ".function.name"))
	}
	if err := json.Unmarshal(name, &tl.Name); err != nil {
		return tool{}, invalidType(at+".function.name", "a string", name)
	}
	if !functionName.MatchString(tl.Name) {
		return tool{}, &Failure{Status: http.StatusBadRequest, Error: NewAPIError(fmt.Sprintf(
			"Invalid '%s.function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.", at),
			"invalid_request_error", at+".function.name", "invalid_value")}
	}
	if d, ok := fn["description"]; ok && !isNull(d) {
		var s string
		if err := json.Unmarshal(d, &s); err != nil {
			return tool{}, invalidType(at+".function.description", "a string", d)
		}
	}
	if st, ok := fn["strict"]; ok && !isNull(st) {
		var b bool
		if err := json.Unmarshal(st, &b); err != nil {
			return tool{}, invalidType(at+".function.strict", "a boolean", st)
		}
	}
	if p, ok := fn["parameters"]; ok && !isNull(p) {
		if f := checkObjectSchema(fmt.Sprintf("Invalid schema for function '%s'", tl.Name), at+".function.parameters",
			"invalid_function_parameters", p); f != nil {
			return tool{}, f
		}
		tl.Parameters = p
	}
	return tl, nil
}

// checkObjectSchema wants a JSON Schema whose type is "object".
func checkObjectSchema(what, param, code string, raw json.RawMessage) *Failure {
	var s map[string]json.RawMessage
	if err := json.Unmarshal(raw, &s); err != nil || s == nil {
		return &Failure{Status: http.StatusBadRequest, Error: NewAPIError(
			fmt.Sprintf("%s: schema must be a JSON Schema object, got %s.", what, jsonKind(raw)), "invalid_request_error", param, code)}
	}
	if typ, ok := s["type"]; !ok || string(bytes.TrimSpace(typ)) != `"object"` {
		got := "None"
		if ok {
			got = string(typ)
		}
		return &Failure{Status: http.StatusBadRequest, Error: NewAPIError(
			fmt.Sprintf("%s: schema must be a JSON Schema of 'type: \"object\"', got 'type: %s'.", what, got),
			"invalid_request_error", param, code)}
	}
	return nil
}

func parseToolChoice(raw json.RawMessage, req *request) *Failure {
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case "none", "auto", "required":
			req.ToolChoice = mode
			return nil
		}
		return invalidValue("tool_choice", mode, "'none', 'auto', and 'required'")
	}
	var named struct {
		Type     string `json:"type"`
		Function *struct {
			Name *string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return invalidType("tool_choice", "a string or an object", raw)
	}
	if named.Type != "function" {
		return invalidValue("tool_choice.type", named.Type, "'function'")
	}
	if named.Function == nil || named.Function.Name == nil {
		return ptr(missing("tool_choice.function.name"))
	}
	for _, t := range req.Tools {
		if t.Name == *named.Function.Name {
			req.ToolChoice = t.Name
			return nil
		}
	}
	f := BadRequest(fmt.Sprintf("Invalid value for 'tool_choice': function '%s' is not one of the functions in 'tools'.", *named.Function.Name), "tool_choice")
	return &f
}

// parseResponseFormat reads response_format: text, json_object (the
// messages must then say "json", as OpenAI requires) or json_schema with
// a name and an object schema.
func parseResponseFormat(body map[string]json.RawMessage, req *request) *Failure {
	raw, ok := body["response_format"]
	if !ok || isNull(raw) {
		return nil
	}
	var rf map[string]json.RawMessage
	if err := json.Unmarshal(raw, &rf); err != nil || rf == nil {
		return invalidType("response_format", "an object", raw)
	}
	typ, ok := rf["type"]
	if !ok || json.Unmarshal(typ, &req.ResponseFormat) != nil {
		return ptr(missing("response_format.type"))
	}
	switch req.ResponseFormat {
	case "text":
	case "json_object":
		mentioned := false
		for _, m := range req.Messages {
			mentioned = mentioned || strings.Contains(strings.ToLower(m.Content), "json")
		}
		if !mentioned {
			f := BadRequest("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", "messages")
			return &f
		}
	case "json_schema":
		return parseJSONSchema(rf["json_schema"])
	default:
		return invalidValue("response_format.type", req.ResponseFormat, "'json_object', 'json_schema', and 'text'")
	}
	return nil
}

func parseJSONSchema(raw json.RawMessage) *Failure {
	if raw == nil || isNull(raw) {
		return ptr(missing("response_format.json_schema"))
	}
	var js map[string]json.RawMessage
	if err := json.Unmarshal(raw, &js); err != nil || js == nil {
		return invalidType("response_format.json_schema", "an object", raw)
	}
	name, ok := js["name"]
	var n string
	if !ok || isNull(name) {
		return ptr(missing("response_format.json_schema.name"))
	}
	if json.Unmarshal(name, &n) != nil || !functionName.MatchString(n) {
		return &Failure{Status: http.StatusBadRequest, Error: NewAPIError(
			"Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
			"invalid_request_error", "response_format.json_schema.name", "invalid_value")}
	}
	schema, ok := js["schema"]
	if !ok || isNull(schema) {
		return ptr(missing("response_format.json_schema.schema"))
	}
	return checkObjectSchema(fmt.Sprintf("Invalid schema for response_format '%s'", n), "response_format.json_schema.schema",
		"invalid_json_schema", schema)
}
