package openaitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// messageKeys are the members a message of each role may have.
func messageKey(role, k string) bool {
	switch k {
	case "role", "content", "name":
		return true
	case "tool_calls":
		return role == "assistant"
	case "tool_call_id":
		return role == "tool"
	}
	return false
}

// parseMessages validates the messages and the order tool calls and their
// results must follow: an assistant message with tool_calls is followed by
// one tool message per call, and a tool message answers a call of the
// assistant message before it.
func (s *Server) parseMessages(r *http.Request, raw json.RawMessage, req *request) *Failure {
	if raw == nil || isNull(raw) {
		f := missing("messages")
		return &f
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return invalidType("messages", "an array", raw)
	}
	if len(list) == 0 {
		f := BadRequest("[] is too short - 'messages'", "messages")
		return &f
	}
	var open []string // calls of the last assistant message not yet answered
	openAt := 0
	for i, m := range list {
		msg, f := s.parseMessage(r, i, m)
		if f != nil {
			return f
		}
		if msg.Role == "tool" {
			j := slices.Index(open, msg.ToolCallID)
			if j < 0 {
				f := BadRequest("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
					fmt.Sprintf("messages[%d].role", i))
				return &f
			}
			open = slices.Delete(open, j, j+1)
		} else {
			if len(open) > 0 {
				return unanswered(openAt, open)
			}
			open = open[:0]
			for _, tc := range msg.ToolCalls {
				open = append(open, tc.ID)
			}
			openAt = i
		}
		req.Messages = append(req.Messages, msg)
	}
	if len(open) > 0 {
		return unanswered(openAt, open)
	}
	return nil
}

func unanswered(at int, ids []string) *Failure {
	f := BadRequest("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "+
		"The following tool_call_ids did not have response messages: "+strings.Join(ids, ", "), fmt.Sprintf("messages[%d].role", at))
	return &f
}

func (s *Server) parseMessage(r *http.Request, i int, raw json.RawMessage) (message, *Failure) {
	at := fmt.Sprintf("messages[%d]", i)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return message{}, invalidType(at, "an object", raw)
	}
	var m message
	role, ok := fields["role"]
	if !ok || isNull(role) {
		return message{}, ptr(missing(at + ".role"))
	}
	if err := json.Unmarshal(role, &m.Role); err != nil {
		return message{}, invalidType(at+".role", "a string", role)
	}
	if !isRole(m.Role) {
		return message{}, invalidValue(at+".role", m.Role, "'system', 'assistant', 'user', 'tool' and 'developer'")
	}
	for _, k := range sortedKeys(fields) {
		if !messageKey(m.Role, k) {
			f := BadRequest(fmt.Sprintf("Unrecognized request argument supplied: %s.%s", at, k), at+"."+k)
			return message{}, &f
		}
	}
	if m.Role == "assistant" {
		if f := parseToolCalls(at+".tool_calls", fields["tool_calls"], &m); f != nil {
			return message{}, f
		}
	}
	if m.Role == "tool" {
		id, ok := fields["tool_call_id"]
		if !ok || isNull(id) {
			return message{}, ptr(missing(at + ".tool_call_id"))
		}
		if err := json.Unmarshal(id, &m.ToolCallID); err != nil {
			return message{}, invalidType(at+".tool_call_id", "a string", id)
		}
	}
	content, ok := fields["content"]
	switch {
	case (!ok || isNull(content)) && len(m.ToolCalls) > 0:
		m.Null = true
	case !ok:
		return message{}, ptr(missing(at + ".content"))
	case isNull(content):
		return message{}, invalidType(at+".content", "a string or an array of content parts", content)
	default:
		if f := s.parseContent(r, at+".content", m.Role, content, &m); f != nil {
			return message{}, f
		}
	}
	if name, ok := fields["name"]; ok && !isNull(name) {
		if err := json.Unmarshal(name, &m.Name); err != nil {
			return message{}, invalidType(at+".name", "a string", name)
		}
	}
	return m, nil
}

// parseToolCalls reads an assistant message's tool_calls.
func parseToolCalls(at string, raw json.RawMessage, m *message) *Failure {
	if raw == nil || isNull(raw) {
		return nil
	}
	var calls []struct {
		ID       *string `json:"id"`
		Type     *string `json:"type"`
		Function *struct {
			Name      *string `json:"name"`
			Arguments *string `json:"arguments"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &calls); err != nil {
		return invalidType(at, "an array of tool calls with string ids, names and arguments", raw)
	}
	if len(calls) == 0 {
		f := BadRequest(fmt.Sprintf("Invalid '%s': empty array. Expected an array with minimum length 1, but got an empty array instead.", at), at)
		return &f
	}
	for j, c := range calls {
		cat := fmt.Sprintf("%s[%d]", at, j)
		switch {
		case c.ID == nil:
			return ptr(missing(cat + ".id"))
		case c.Type == nil:
			return ptr(missing(cat + ".type"))
		case *c.Type != "function":
			return invalidValue(cat+".type", *c.Type, "'function'")
		case c.Function == nil:
			return ptr(missing(cat + ".function"))
		case c.Function.Name == nil:
			return ptr(missing(cat + ".function.name"))
		case c.Function.Arguments == nil:
			return ptr(missing(cat + ".function.arguments"))
		}
		m.ToolCalls = append(m.ToolCalls, ToolCall{ID: *c.ID, Name: *c.Function.Name, Arguments: *c.Function.Arguments})
	}
	return nil
}

// contentPart is a content part as sent.
type contentPart struct {
	Type     string  `json:"type"`
	Text     *string `json:"text"`
	ImageURL *struct {
		URL    *string `json:"url"`
		Detail string  `json:"detail"`
	} `json:"image_url"`
}

// parseContent accepts a string or an array of parts: text parts, and
// image_url parts in user messages only. An image URL must be a data URI
// of a PNG, JPEG, GIF or WebP image, or an http(s) URL the fake fetches,
// as OpenAI does, to find an image there.
func (s *Server) parseContent(r *http.Request, at, role string, raw json.RawMessage, m *message) *Failure {
	if json.Unmarshal(raw, &m.Content) == nil {
		return nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return invalidType(at, "a string or an array of content parts", raw)
	}
	var b strings.Builder
	for j, p := range parts {
		pat := fmt.Sprintf("%s[%d]", at, j)
		switch {
		case p.Type == "text":
			if p.Text == nil {
				return ptr(missing(pat + ".text"))
			}
			b.WriteString(*p.Text)
		case p.Type == "image_url" && role == "user":
			if p.ImageURL == nil || p.ImageURL.URL == nil {
				return ptr(missing(pat + ".image_url.url"))
			}
			switch p.ImageURL.Detail {
			case "", "auto", "low", "high":
			default:
				return invalidValue(pat+".image_url.detail", p.ImageURL.Detail, "'auto', 'low', and 'high'")
			}
			if f := s.checkImage(r, pat+".image_url.url", *p.ImageURL.URL); f != nil {
				return f
			}
			m.Images++
		case p.Type == "image_url":
			return invalidValue(pat+".type", p.Type, "'text'")
		default:
			return invalidValue(pat+".type", p.Type, "'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'")
		}
	}
	m.Content = b.String()
	return nil
}

var dataURI = regexp.MustCompile(`^data:image/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/]+={0,2})$`)

// checkImage checks an image URL as OpenAI does.
func (s *Server) checkImage(r *http.Request, at, url string) *Failure {
	unsupported := &Failure{Status: http.StatusBadRequest, Error: NewAPIError(
		"You uploaded an unsupported image. Please make sure your image is below 20 MB in size and is of one the following formats: ['png', 'jpeg', 'gif', 'webp'].",
		"invalid_request_error", at, "invalid_image_format")}
	if strings.HasPrefix(url, "data:") {
		if !dataURI.MatchString(url) || !isImage(decodeBase64(dataURI.FindStringSubmatch(url)[2])) {
			return unsupported
		}
		return nil
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return &Failure{Status: http.StatusBadRequest, Error: NewAPIError(
			"Invalid image URL: the URL must be an http(s) URL or a base64 data URL.", "invalid_request_error", at, "invalid_image_url")}
	}
	b, ok := s.fetch(r, url)
	if !ok {
		return &Failure{Status: http.StatusBadRequest, Error: NewAPIError(
			"Error while downloading "+url+".", "invalid_request_error", at, "invalid_image_url")}
	}
	if !isImage(b) {
		return unsupported
	}
	return nil
}
