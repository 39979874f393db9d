package ollama

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/llmq/llmq/schema"
)

// formatJSON is Ollama's format for "any JSON object" (json_object).
var formatJSON = json.RawMessage(`"json"`)

// chatBody maps an OpenAI request onto Ollama's chat body. Name, user and
// metadata have no Ollama equivalent and are dropped; parameters Ollama
// cannot honour are refused or, with drop_params, dropped (see
// unsupported). Image URLs are fetched here, within ctx.
func (p *Provider) chatBody(ctx context.Context, req *schema.Request, stream bool) (*chatRequest, error) {
	if req == nil || len(req.Messages) == 0 {
		return nil, schema.NewError(schema.CodeBadRequest, "ollama: messages: at least one message is required")
	}
	if err := p.unsupported(req); err != nil {
		return nil, err
	}
	body := &chatRequest{Model: p.model, Stream: stream, Messages: make([]chatMessage, len(req.Messages))}
	for i := range req.Messages {
		m, err := p.message(ctx, req.Messages, i)
		if err != nil {
			return nil, err
		}
		body.Messages[i] = m
	}
	if err := p.mapTools(req, body); err != nil {
		return nil, err
	}
	format, err := responseFormat(req.ResponseFormat)
	if err != nil {
		return nil, err
	}
	body.Format = format
	body.Think = think(req.ReasoningEffort)
	body.KeepAlive = p.keepAlive

	opts := chatOptions{Temperature: req.Temperature, TopP: req.TopP, Seed: req.Seed,
		Presence: req.PresencePenalty, Frequency: req.FrequencyPenalty}
	if n := req.Limit(); n > 0 {
		opts.NumPredict = &n
	}
	if len(req.Stop) > 0 {
		opts.Stop = append([]string(nil), req.Stop...)
	}
	if opts.Temperature != nil || opts.TopP != nil || opts.NumPredict != nil || opts.Stop != nil ||
		opts.Seed != nil || opts.Presence != nil || opts.Frequency != nil {
		body.Options = &opts
	}
	return body, nil
}

// unsupported refuses, or with drop_params lets through without them, the
// parameters Ollama has no way to honour: more than one choice, logprobs,
// a forced tool call, and one call at most.
func (p *Provider) unsupported(req *schema.Request) error {
	if req.N != nil && *req.N > 1 {
		if err := p.o.Unsupported(Name, "n"); err != nil {
			return err
		}
	}
	if req.Logprobs || req.TopLogprobs != nil {
		if err := p.o.Unsupported(Name, "logprobs"); err != nil {
			return err
		}
	}
	if tc := req.ToolChoice; tc != nil && (tc.Mode == schema.ToolChoiceRequired || tc.Mode == schema.ToolChoiceFunction) {
		if err := p.o.Unsupported(Name, "tool_choice"); err != nil {
			return err
		}
	}
	if pc := req.ParallelToolCalls; pc != nil && !*pc && len(req.Tools) > 0 {
		if err := p.o.Unsupported(Name, "parallel_tool_calls"); err != nil {
			return err
		}
	}
	return nil
}

// message maps message i: its text, its images inline, an assistant's tool
// calls with their arguments as objects, a tool result with the name of
// the function it answers.
func (p *Provider) message(ctx context.Context, msgs []schema.Message, i int) (chatMessage, error) {
	m := &msgs[i]
	role, ok := ollamaRole(m.Role)
	if !ok {
		return chatMessage{}, schema.Errorf(schema.CodeBadRequest,
			"ollama: messages[%d].role: %q is not one of system, developer, user, assistant, tool", i, m.Role)
	}
	out := chatMessage{Role: role, Content: m.Text()}
	for j, part := range m.Parts {
		if part.Type != schema.PartImageURL || part.ImageURL == nil {
			continue
		}
		img, err := p.o.LoadImage(ctx, part.ImageURL.URL)
		if err != nil {
			e := schema.AsError(err)
			return chatMessage{}, schema.Errorf(e.Code, "ollama: messages[%d].content[%d].image_url: %s", i, j, e.Message)
		}
		out.Images = append(out.Images, img.Base64)
	}
	for j, tc := range m.ToolCalls {
		args, ok := objectArguments(tc.Function.Arguments)
		if !ok {
			return chatMessage{}, schema.Errorf(schema.CodeBadRequest,
				"ollama: messages[%d].tool_calls[%d].function.arguments: must be a JSON object as a string", i, j)
		}
		var w wireToolCall
		w.Function.Name = tc.Function.Name
		w.Function.Arguments = args
		out.ToolCalls = append(out.ToolCalls, w)
	}
	if m.Role == schema.RoleTool {
		name := calledFunction(msgs[:i], m.ToolCallID)
		if name == "" {
			return chatMessage{}, schema.Errorf(schema.CodeBadRequest,
				"ollama: messages[%d].tool_call_id: %q matches no tool call of an earlier assistant message", i, m.ToolCallID)
		}
		out.ToolName = name
	}
	return out, nil
}

// objectArguments turns a call's arguments, a JSON object as a string, into
// the object Ollama takes (compacted, keys in their order). An empty
// string is an empty object, as some clients write a call without
// arguments.
func objectArguments(s string) (json.RawMessage, bool) {
	b := bytes.TrimSpace([]byte(s))
	if len(b) == 0 {
		return json.RawMessage(`{}`), true
	}
	var out bytes.Buffer
	if b[0] != '{' || json.Compact(&out, b) != nil {
		return nil, false
	}
	return out.Bytes(), true
}

// calledFunction returns the name of the function the latest call with id
// among msgs called, or "".
func calledFunction(msgs []schema.Message, id string) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, tc := range msgs[i].ToolCalls {
			if tc.ID == id && id != "" {
				return tc.Function.Name
			}
		}
	}
	return ""
}

// mapTools declares the tools, unless tool_choice is "none": Ollama has
// no tool_choice, so a model that must not call tools is not shown them.
func (p *Provider) mapTools(req *schema.Request, body *chatRequest) error {
	if len(req.Tools) == 0 || (req.ToolChoice != nil && req.ToolChoice.Mode == schema.ToolChoiceNone) {
		return nil
	}
	body.Tools = make([]chatTool, len(req.Tools))
	for i, t := range req.Tools {
		if t.Function.Name == "" {
			return schema.Errorf(schema.CodeBadRequest, "ollama: tools[%d].function.name: required", i)
		}
		params := json.RawMessage(t.Function.Parameters)
		if len(params) > 0 && !t.Function.Parameters.IsObject() {
			return schema.Errorf(schema.CodeBadRequest, "ollama: tools[%d].function.parameters: must be a JSON Schema object", i)
		}
		body.Tools[i] = chatTool{Type: schema.ToolTypeFunction, Function: toolFunction{
			Name: t.Function.Name, Description: t.Function.Description, Parameters: params}}
	}
	return nil
}

// responseFormat maps response_format onto Ollama's format: nothing for
// text, "json" for json_object, the schema itself for json_schema ("json"
// when the schema is left out).
func responseFormat(f *schema.ResponseFormat) (json.RawMessage, error) {
	if f == nil {
		return nil, nil
	}
	switch f.Type {
	case schema.FormatText:
		return nil, nil
	case schema.FormatJSONObject:
		return formatJSON, nil
	case schema.FormatJSONSchema:
		if f.JSONSchema == nil || len(f.JSONSchema.Schema) == 0 {
			return formatJSON, nil
		}
		if !f.JSONSchema.Schema.IsObject() {
			return nil, schema.NewError(schema.CodeBadRequest,
				"ollama: response_format.json_schema.schema: must be a JSON Schema object")
		}
		return json.RawMessage(f.JSONSchema.Schema), nil
	}
	return nil, schema.Errorf(schema.CodeBadRequest,
		"ollama: response_format.type: %q is not one of text, json_object, json_schema", f.Type)
}

// think maps reasoning_effort onto Ollama's think: "none" turns a thinking
// model's reasoning off, any other effort turns it on; unset leaves the
// model's default.
func think(effort string) *bool {
	if effort == "" {
		return nil
	}
	on := effort != "none"
	return &on
}
