package gemini_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

const weatherParams = `{"type":"object","properties":{"city":{"type":"string","description":"City name"},` +
	`"unit":{"type":"string","enum":["c","f"]}},"required":["city"],"additionalProperties":false}`

func weatherTool() schema.Tool {
	return schema.Tool{Type: schema.ToolTypeFunction, Function: schema.Function{
		Name: "get_weather", Description: "Weather of a city", Parameters: schema.RawJSON(weatherParams)}}
}

func timeTool() schema.Tool {
	return schema.Tool{Type: schema.ToolTypeFunction, Function: schema.Function{
		Name: "get_time", Parameters: schema.RawJSON(`{"type":"object","properties":{"tz":{"type":"string"}}}`)}}
}

func toolRequest(text string, tools ...schema.Tool) *schema.Request {
	req := userRequest(text)
	req.Tools = tools
	return req
}

// jsonEqual fails unless got and want are the same JSON value.
func jsonEqual(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: want: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s =\n%s\nwant\n%s", what, got, want)
	}
}

func TestTools_SchemaConvertedToGeminiSchema(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	params := `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","title":"Args",
	"properties":{
		"zeta":{"type":["string","null"],"description":"nullable by type list","default":"z"},
		"alpha":{"anyOf":[{"$ref":"#/$defs/Point"},{"type":"null"}]},
		"mode":{"const":"fast"},
		"tags":{"type":"array","items":{"type":"string","format":"email"},"minItems":1,"maxItems":3,"uniqueItems":true},
		"n":{"type":"integer","minimum":0,"maximum":10,"exclusiveMaximum":11,"examples":[3]},
		"either":{"oneOf":[{"type":"string"},{"type":"number"}]},
		"level":{"type":"string","enum":["low","high",null]}
	},
	"required":["zeta","alpha"],"additionalProperties":false,
	"$defs":{"Point":{"type":"object","properties":{"y":{"type":"number"},"x":{"type":"number"}},"required":["x","y"],"additionalProperties":false}}}`
	req := toolRequest("hi", schema.Tool{Type: "function", Function: schema.Function{
		Name: "f", Description: "d", Parameters: schema.RawJSON(params), Strict: ptr(true)}})
	if _, err := newProvider(t, srv).Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	decls := srv.Requests()[0].Body.Tools[0].FunctionDeclarations
	if len(decls) != 1 || decls[0].Name != "f" || decls[0].Description != "d" {
		t.Fatalf("declarations = %+v", decls)
	}
	jsonEqual(t, "parameters", decls[0].Parameters, `{"type":"OBJECT","title":"Args",
	"properties":{
		"zeta":{"type":"STRING","nullable":true,"description":"nullable by type list","default":"z"},
		"alpha":{"type":"OBJECT","nullable":true,"properties":{"y":{"type":"NUMBER"},"x":{"type":"NUMBER"}},
			"required":["x","y"],"propertyOrdering":["y","x"]},
		"mode":{"type":"STRING","enum":["fast"]},
		"tags":{"type":"ARRAY","items":{"type":"STRING","format":"email"},"minItems":1,"maxItems":3},
		"n":{"type":"INTEGER","minimum":0,"maximum":10},
		"either":{"anyOf":[{"type":"STRING"},{"type":"NUMBER"}]},
		"level":{"type":"STRING","enum":["low","high"],"nullable":true}
	},
	"required":["zeta","alpha"],
	"propertyOrdering":["zeta","alpha","mode","tags","n","either","level"]}`)
}

func TestTools_FunctionWithoutParametersSendsNone(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := toolRequest("hi",
		schema.Tool{Type: "function", Function: schema.Function{Name: "ping", Parameters: schema.RawJSON(`{"type":"object","properties":{}}`)}},
		schema.Tool{Type: "function", Function: schema.Function{Name: "pong"}})
	if _, err := newProvider(t, srv).Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	for _, d := range srv.Requests()[0].Body.Tools[0].FunctionDeclarations {
		if d.Parameters != nil {
			t.Errorf("%s: parameters %s sent; Gemini refuses an OBJECT without properties", d.Name, d.Parameters)
		}
	}
}

func TestTools_UnconvertibleSchemaIsBadRequestNamingThePlace(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ params, where string }{
		"recursive ref": {`{"type":"object","properties":{"node":{"$ref":"#/$defs/N"}},"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}}`,
			"tools[0].function.parameters.properties.node.properties.next.$ref"},
		"remote ref":       {`{"type":"object","properties":{"a":{"$ref":"https://x/s.json"}}}`, "properties.a.$ref"},
		"number enum":      {`{"type":"object","properties":{"a":{"type":"integer","enum":[1,2]}}}`, "properties.a.enum[0]"},
		"tuple items":      {`{"type":"object","properties":{"a":{"type":"array","items":[{"type":"string"}]}}}`, "properties.a.items"},
		"allOf of two":     {`{"type":"object","properties":{"a":{"allOf":[{"type":"string"},{"minLength":1}]}}}`, "properties.a.allOf"},
		"unknown type":     {`{"type":"object","properties":{"a":{"type":"text"}}}`, "properties.a.type"},
		"null type alone":  {`{"type":"object","properties":{"a":{"type":"null"}},"required":[]}`, ""},
		"too deep":         {strings.Repeat(`{"type":"object","properties":{"a":`, 70) + `{"type":"string"}` + strings.Repeat(`}}`, 70), "nested deeper"},
		"not JSON objects": {`{"type":"object","properties":{"a":3}}`, "properties.a"},
	}
	for label, tc := range cases {
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			srv := geminitest.NewServer(t, geminitest.Config{})
			req := toolRequest("hi", schema.Tool{Type: "function", Function: schema.Function{Name: "f", Parameters: schema.RawJSON(tc.params)}})
			_, err := newProvider(t, srv).Complete(context.Background(), req)
			if label == "null type alone" {
				// {"type":"null"} is a nullable schema without a type,
				// which Gemini takes.
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			e := wantCode(t, err, schema.CodeBadRequest)
			if !strings.Contains(e.Message, "tools[0].function.parameters") || !strings.Contains(e.Message, tc.where) {
				t.Errorf("message %q should name %q", e.Message, tc.where)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("sent %d requests", n)
			}
		})
	}
}

func TestToolChoice_EachModeMapsToFunctionCallingConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		choice   schema.ToolChoice
		mode     string
		allowed  []string
		wantCall string // the function the model calls, "" for a text answer
	}{
		{schema.ToolChoice{Mode: schema.ToolChoiceAuto}, "AUTO", nil, "get_weather"},
		{schema.ToolChoice{Mode: schema.ToolChoiceNone}, "NONE", nil, ""},
		{schema.ToolChoice{Mode: schema.ToolChoiceRequired}, "ANY", nil, "get_weather"},
		{schema.ToolChoice{Mode: schema.ToolChoiceFunction, Function: "get_time"}, "ANY", []string{"get_time"}, "get_time"},
	}
	for _, tc := range cases {
		t.Run(tc.mode+"/"+tc.choice.Mode, func(t *testing.T) {
			t.Parallel()
			srv := geminitest.NewServer(t, geminitest.Config{Calls: []geminitest.Call{{Name: "get_weather", Args: `{"city":"Paris"}`}}})
			req := toolRequest("weather?", weatherTool(), timeTool())
			req.ToolChoice = &tc.choice
			resp, err := newProvider(t, srv).Complete(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			got := srv.Requests()[0].Body.ToolConfig
			want := &geminitest.ToolConfig{FunctionCallingConfig: &geminitest.FunctionCallingConfig{Mode: tc.mode, AllowedFunctionNames: tc.allowed}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("toolConfig = %+v, want %+v", got.FunctionCallingConfig, want.FunctionCallingConfig)
			}
			calls := resp.ToolCalls()
			switch {
			case tc.wantCall == "" && (len(calls) != 0 || resp.Choices[0].FinishReason != schema.FinishStop):
				t.Errorf("calls %+v finish %q, want a text answer", calls, resp.Choices[0].FinishReason)
			case tc.wantCall != "" && (len(calls) != 1 || calls[0].Function.Name != tc.wantCall ||
				resp.Choices[0].FinishReason != schema.FinishToolCalls):
				t.Errorf("calls %+v finish %q, want a call of %s", calls, resp.Choices[0].FinishReason, tc.wantCall)
			}
		})
	}
}

func TestToolChoice_WithoutToolsSendsNoToolConfig(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := userRequest("hi")
	req.ToolChoice = &schema.ToolChoice{Mode: schema.ToolChoiceNone}
	if _, err := newProvider(t, srv).Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if b := srv.Requests()[0].Body; b.ToolConfig != nil || b.Tools != nil {
		t.Errorf("sent tools %+v toolConfig %+v", b.Tools, b.ToolConfig)
	}
}

func TestParallelToolCalls_FalseWithSeveralToolsIsUnsupported(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Calls: []geminitest.Call{{Name: "get_weather", Args: `{"city":"Oslo"}`}}})
	req := toolRequest("hi", weatherTool(), timeTool())
	req.ParallelToolCalls = ptr(false)
	_, err := newProvider(t, srv).Complete(context.Background(), req)
	e := wantCode(t, err, schema.CodeBadRequest)
	if !strings.Contains(e.Message, "parallel_tool_calls") {
		t.Errorf("message %q does not name parallel_tool_calls", e.Message)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("sent %d requests", n)
	}

	// drop_params drops it; one tool or true needs nothing.
	for _, r := range []*schema.Request{req, toolRequest("hi", weatherTool()), toolRequest("hi", weatherTool(), timeTool())} {
		if r != req {
			r.ParallelToolCalls = ptr(r.Tools[len(r.Tools)-1].Function.Name == "get_time")
		}
		p := newProvider(t, srv, func(o *provider.Options) { o.DropParams = r == req })
		resp, err := p.Complete(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ToolCalls()) != 1 {
			t.Errorf("calls = %+v", resp.ToolCalls())
		}
	}
}

func TestAssistantArgumentsMustBeAnObject(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := toolRequest("hi", weatherTool())
	req.Messages = append(req.Messages,
		schema.Message{Role: schema.RoleAssistant, ToolCalls: []schema.ToolCall{{ID: "c1", Type: "function",
			Function: schema.FunctionCall{Name: "get_weather", Arguments: `["Paris"]`}}}},
		schema.Message{Role: schema.RoleTool, ToolCallID: "c1", Content: "sunny"})
	_, err := newProvider(t, srv).Complete(context.Background(), req)
	e := wantCode(t, err, schema.CodeBadRequest)
	if !strings.Contains(e.Message, "messages[1].tool_calls[0].function.arguments") {
		t.Errorf("message %q does not name the arguments", e.Message)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("sent %d requests", n)
	}
}

func TestToolMessageWithoutCallIsBadRequest(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := toolRequest("hi", weatherTool())
	req.Messages = append(req.Messages, schema.Message{Role: schema.RoleTool, ToolCallID: "nope", Content: "x"})
	_, err := newProvider(t, srv).Complete(context.Background(), req)
	e := wantCode(t, err, schema.CodeBadRequest)
	if !strings.Contains(e.Message, "messages[1].tool_call_id") {
		t.Errorf("message %q", e.Message)
	}
}
