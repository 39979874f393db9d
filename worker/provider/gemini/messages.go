package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/llmq/llmq/schema"
)

// buildRequest maps an OpenAI chat request onto a GenerateContentRequest:
// the conversation (see contents), the tools and the generation
// parameters. A parameter Gemini cannot honour is refused or, with
// drop_params, left out.
func (p *Provider) buildRequest(ctx context.Context, req *schema.Request) (*generateRequest, error) {
	out, err := p.contents(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := p.tools(req, out); err != nil {
		return nil, err
	}
	cfg, err := p.generationConfig(req)
	if err != nil {
		return nil, err
	}
	out.GenerationConfig = cfg
	return out, nil
}

// contents maps the messages. System and developer messages become
// systemInstruction parts, in order; assistant turns become "model" with
// their text and functionCall parts; tool results become functionResponse
// parts of a "user" turn; consecutive turns of one role share one content;
// empty messages are dropped (Gemini rejects empty parts). It is a
// bad_request when no user or assistant part is left.
func (p *Provider) contents(ctx context.Context, req *schema.Request) (*generateRequest, error) {
	out := &generateRequest{Contents: []content{}}
	var system []part
	calls := map[string]string{} // tool call id → function name
	for i := range req.Messages {
		m := &req.Messages[i]
		var role string
		var parts []part
		var err error
		switch m.Role {
		case schema.RoleSystem, schema.RoleDeveloper:
			if text := m.Text(); text != "" {
				system = append(system, part{Text: text})
			}
			continue
		case schema.RoleUser:
			role = roleUser
			parts, err = p.userParts(ctx, m, i)
		case schema.RoleAssistant:
			role = roleModel
			parts, err = assistantParts(m, i, calls)
		case schema.RoleTool:
			role = roleUser
			parts, err = toolParts(m, i, calls)
		default:
			return nil, schema.Errorf(schema.CodeBadRequest, "%s: messages[%d].role: %q is not supported", name, i, m.Role)
		}
		if err != nil {
			return nil, err
		}
		if len(parts) == 0 {
			continue
		}
		if n := len(out.Contents); n > 0 && out.Contents[n-1].Role == role {
			out.Contents[n-1].Parts = append(out.Contents[n-1].Parts, parts...)
			continue
		}
		out.Contents = append(out.Contents, content{Role: role, Parts: parts})
	}
	if len(out.Contents) == 0 {
		return nil, schema.NewError(schema.CodeBadRequest, "gemini: at least one user or assistant message with text is required")
	}
	if len(system) > 0 {
		out.SystemInstruction = &content{Parts: system}
	}
	return out, nil
}

// userParts maps a user message: its text, or its text and image parts in
// order, images inline (a URL is fetched: Gemini's API takes only its own
// file URIs).
func (p *Provider) userParts(ctx context.Context, m *schema.Message, i int) ([]part, error) {
	if m.Parts == nil {
		if m.Content == "" {
			return nil, nil
		}
		return []part{{Text: string(m.Content)}}, nil
	}
	parts := make([]part, 0, len(m.Parts))
	for j, cp := range m.Parts {
		switch {
		case cp.Type == schema.PartText && cp.Text != "":
			parts = append(parts, part{Text: cp.Text})
		case cp.Type == schema.PartImageURL && cp.ImageURL != nil:
			img, err := p.opts.LoadImage(ctx, cp.ImageURL.URL)
			if err != nil {
				e := schema.AsError(err)
				return nil, schema.Errorf(e.Code, "%s: messages[%d].content[%d].image_url: %s", name, i, j, e.Message)
			}
			parts = append(parts, part{InlineData: &blob{MimeType: img.MediaType, Data: img.Base64}})
		}
	}
	return parts, nil
}

// assistantParts maps an assistant message: its text, then one
// functionCall part per tool call, whose arguments (a JSON string) must
// hold a JSON object, with the thought signature its id carries. It
// records each call's function name by id, for the tool messages that
// answer it.
func assistantParts(m *schema.Message, i int, calls map[string]string) ([]part, error) {
	var parts []part
	if text := m.Text(); text != "" {
		parts = append(parts, part{Text: text})
	}
	for j, tc := range m.ToolCalls {
		args, err := objectArgs(tc.Function.Arguments)
		if err != nil {
			return nil, schema.Errorf(schema.CodeBadRequest, "%s: messages[%d].tool_calls[%d].function.arguments: %v", name, i, j, err)
		}
		calls[tc.ID] = tc.Function.Name
		parts = append(parts, part{FunctionCall: &functionCall{Name: tc.Function.Name, Args: args},
			ThoughtSignature: splitSignature(tc.ID)})
	}
	return parts, nil
}

var errNotObject = errors.New("must be a JSON object (Gemini takes function arguments as an object)")

// objectArgs returns a tool call's arguments as compact JSON, which must be
// an object (Gemini's args is a Struct); empty arguments are {}.
func objectArgs(s string) (json.RawMessage, error) {
	b := bytes.TrimSpace([]byte(s))
	if len(b) == 0 {
		return json.RawMessage("{}"), nil
	}
	if b[0] != '{' || !json.Valid(b) {
		return nil, errNotObject
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, errNotObject
	}
	return out.Bytes(), nil
}

// toolParts maps a tool message onto a functionResponse part named after
// the call it answers. Its content is the response when it is a JSON
// object, else it goes in {"content": text}, as LiteLLM sends it.
func toolParts(m *schema.Message, i int, calls map[string]string) ([]part, error) {
	fn, ok := calls[m.ToolCallID]
	if !ok {
		return nil, schema.Errorf(schema.CodeBadRequest, "%s: messages[%d].tool_call_id: %q matches no tool call of an earlier assistant message", name, i, m.ToolCallID)
	}
	text := m.Text()
	resp, err := objectArgs(text)
	if err != nil || strings.TrimSpace(text) == "" {
		b, _ := json.Marshal(map[string]string{"content": text})
		resp = b
	}
	return []part{{FunctionResponse: &functionResponse{Name: fn, Response: resp}}}, nil
}
