package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/llmq/llmq/schema"
)

// addMessages maps the conversation onto w.Messages and returns the
// system and developer texts, in order. Tool messages become tool_result
// blocks of one user turn, which a user message right after them joins.
func (w *wireRequest) addMessages(ms []schema.Message) ([]string, error) {
	var system []string
	for i := range ms {
		m := &ms[i]
		switch m.Role {
		case schema.RoleSystem, schema.RoleDeveloper:
			if s := m.Text(); strings.TrimSpace(s) != "" {
				system = append(system, s)
			}
		case schema.RoleUser:
			c, err := userContent(i, m)
			if err != nil {
				return nil, err
			}
			if last := w.lastMessage(); last != nil && last.toolTurn {
				last.Content.Blocks = append(last.Content.Blocks, c.asBlocks()...)
				continue
			}
			w.Messages = append(w.Messages, wireMessage{Role: schema.RoleUser, Content: c})
		case schema.RoleAssistant:
			c, err := assistantContent(i, m)
			if err != nil {
				return nil, err
			}
			w.Messages = append(w.Messages, wireMessage{Role: schema.RoleAssistant, Content: c})
		case schema.RoleTool:
			b := wireBlock{Type: "tool_result", ToolUseID: m.ToolCallID, Content: m.Text()}
			last := w.lastMessage()
			if last == nil || !last.toolTurn {
				w.Messages = append(w.Messages, wireMessage{Role: schema.RoleUser, toolTurn: true,
					Content: wireContent{Blocks: []wireBlock{}}})
				last = w.lastMessage()
			}
			last.Content.Blocks = append(last.Content.Blocks, b)
		default:
			return nil, schema.Errorf(schema.CodeBadRequest,
				"anthropic: messages[%d].role: %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
	}
	for i := range w.Messages {
		if w.Messages[i].toolTurn {
			toolResultsFirst(w.Messages[i].Content.Blocks)
		}
	}
	return system, nil
}

func (w *wireRequest) lastMessage() *wireMessage {
	if len(w.Messages) == 0 {
		return nil
	}
	return &w.Messages[len(w.Messages)-1]
}

// asBlocks returns c as content blocks; blank text has none (the API
// refuses an empty or whitespace-only text block).
func (c wireContent) asBlocks() []wireBlock {
	if c.Blocks != nil {
		return c.Blocks
	}
	if strings.TrimSpace(c.Text) == "" {
		return nil
	}
	return []wireBlock{{Type: "text", Text: c.Text}}
}

// toolResultsFirst moves the tool_result blocks of a user turn in front
// of its other blocks, keeping their order: the API wants them first.
func toolResultsFirst(bs []wireBlock) {
	out := make([]wireBlock, 0, len(bs))
	for _, b := range bs {
		if b.Type == "tool_result" {
			out = append(out, b)
		}
	}
	for _, b := range bs {
		if b.Type != "tool_result" {
			out = append(out, b)
		}
	}
	copy(bs, out)
}

// userContent maps a user message: its text as a string, or text and
// image blocks when it has images.
func userContent(i int, m *schema.Message) (wireContent, error) {
	if !m.HasImages() {
		return wireContent{Text: m.Text()}, nil
	}
	blocks := make([]wireBlock, 0, len(m.Parts))
	for j, p := range m.Parts {
		switch p.Type {
		case schema.PartText:
			if strings.TrimSpace(p.Text) != "" {
				blocks = append(blocks, wireBlock{Type: "text", Text: p.Text})
			}
		case schema.PartImageURL:
			b, err := imageBlock(i, j, p.ImageURL)
			if err != nil {
				return wireContent{}, err
			}
			blocks = append(blocks, b)
		}
	}
	return wireContent{Blocks: blocks}, nil
}

// imageMediaTypes are the media types the API takes for base64 images.
var imageMediaTypes = [...]string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// imageBlock maps an image part: a data URI's bytes go inline, an http(s)
// URL is passed on for the API to fetch. Its detail has no counterpart
// and is dropped.
func imageBlock(i, j int, img *schema.ImageURL) (wireBlock, error) {
	if img == nil {
		return wireBlock{}, schema.Errorf(schema.CodeBadRequest, "anthropic: messages[%d].content[%d].image_url: required", i, j)
	}
	u := img.URL
	switch {
	case strings.HasPrefix(u, "data:"):
		mt, data, err := schema.ParseDataURI(u)
		if err != nil {
			msg := err.Error()
			if e := (*schema.Error)(nil); errors.As(err, &e) {
				msg = e.Message
			}
			return wireBlock{}, schema.Errorf(schema.CodeBadRequest,
				"anthropic: messages[%d].content[%d].image_url.url: %s", i, j, msg)
		}
		mt = strings.ToLower(mt)
		if mt == "image/jpg" {
			mt = "image/jpeg"
		}
		ok := false
		for _, t := range imageMediaTypes {
			ok = ok || mt == t
		}
		if !ok {
			return wireBlock{}, schema.Errorf(schema.CodeBadRequest,
				"anthropic: messages[%d].content[%d].image_url.url: media type %q is not one of image/jpeg, image/png, image/gif, image/webp", i, j, mt)
		}
		return wireBlock{Type: "image", Source: &wireSource{Type: "base64", MediaType: mt, Data: data}}, nil
	case strings.HasPrefix(u, "https://"), strings.HasPrefix(u, "http://"):
		return wireBlock{Type: "image", Source: &wireSource{Type: "url", URL: u}}, nil
	}
	return wireBlock{}, schema.Errorf(schema.CodeBadRequest,
		"anthropic: messages[%d].content[%d].image_url.url: want an http(s) URL or a data: URI", i, j)
}

// assistantContent maps an assistant message: its text as a string, or,
// when it calls tools, a text block (if it has text) and a tool_use block
// per call, whose input is the call's arguments parsed.
func assistantContent(i int, m *schema.Message) (wireContent, error) {
	text := m.Text()
	if len(m.ToolCalls) == 0 {
		return wireContent{Text: text}, nil
	}
	blocks := make([]wireBlock, 0, len(m.ToolCalls)+1)
	if strings.TrimSpace(text) != "" {
		blocks = append(blocks, wireBlock{Type: "text", Text: text})
	}
	for j, tc := range m.ToolCalls {
		input, err := toolInput(tc.Function.Arguments)
		if err != nil {
			return wireContent{}, schema.Errorf(schema.CodeBadRequest,
				"anthropic: messages[%d].tool_calls[%d].function.arguments: %v", i, j, err)
		}
		blocks = append(blocks, wireBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	return wireContent{Blocks: blocks}, nil
}

// toolInput parses a call's arguments, a JSON object as a string ("" is
// {}), into the object a tool_use block's input is.
func toolInput(args string) (json.RawMessage, error) {
	b := bytes.TrimSpace([]byte(args))
	if len(b) == 0 {
		return json.RawMessage("{}"), nil
	}
	if b[0] != '{' || !json.Valid(b) {
		return nil, errors.New("not a JSON object")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
