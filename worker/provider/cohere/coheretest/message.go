package coheretest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// messageKeys are the members a v2 message of each role may have.
var messageKeys = map[string][]string{
	"system":    {"role", "content"},
	"user":      {"role", "content"},
	"assistant": {"role", "content", "tool_calls", "tool_plan", "citations"},
	"tool":      {"role", "content", "tool_call_id"},
}

// parseMessages validates the messages: their roles and members; content
// required but on an assistant message with tool calls; text and images
// in user messages, text elsewhere (and documents in tool results); a
// tool message answering a call of the assistant message before it.
func (s *Server) parseMessages(r *http.Request, raw json.RawMessage, req *request) *Failure {
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		f := BadRequest("messages must be a non-empty array")
		return &f
	}
	var calls []string // of the last assistant message
	for i, m := range list {
		var msg message
		if err := json.Unmarshal(m["role"], &msg.Role); err != nil {
			return bad("messages[%d].role is required", i)
		}
		keys, ok := messageKeys[msg.Role]
		if !ok {
			return bad("messages[%d].role must be one of system, user, assistant, tool; got %q", i, msg.Role)
		}
		for k := range m {
			if !slices.Contains(keys, k) {
				return bad("messages[%d]: %s is not a valid field of a %s message", i, k, msg.Role)
			}
		}
		switch msg.Role {
		case "assistant":
			if f := parseToolCalls(i, m["tool_calls"], &msg); f != nil {
				return f
			}
			calls = calls[:0]
			for _, c := range msg.ToolCalls {
				calls = append(calls, c.ID)
			}
		case "tool":
			if err := json.Unmarshal(m["tool_call_id"], &msg.ToolCallID); err != nil || msg.ToolCallID == "" {
				return bad("messages[%d].tool_call_id is required in a tool message", i)
			}
			if !slices.Contains(calls, msg.ToolCallID) {
				return bad("messages[%d].tool_call_id %q does not match a tool call of the previous assistant message", i, msg.ToolCallID)
			}
		}
		c, has := m["content"]
		switch {
		case (!has || string(c) == "null") && len(msg.ToolCalls) > 0:
		case !has || string(c) == "null":
			return bad("messages[%d].content is required", i)
		default:
			if f := s.parseContent(r, i, c, &msg); f != nil {
				return f
			}
		}
		req.Messages = append(req.Messages, msg)
	}
	return nil
}

func bad(format string, args ...any) *Failure {
	f := BadRequest(fmt.Sprintf(format, args...))
	return &f
}

// parseToolCalls reads an assistant message's tool_calls: each an id,
// type "function", a name and arguments as a JSON string.
func parseToolCalls(i int, raw json.RawMessage, m *message) *Failure {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	var list []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function *struct {
			Name      string  `json:"name"`
			Arguments *string `json:"arguments"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return bad("messages[%d].tool_calls must be an array of tool calls with string arguments", i)
	}
	for j, c := range list {
		if c.ID == "" || c.Type != "function" || c.Function == nil || c.Function.Name == "" || c.Function.Arguments == nil {
			return bad("messages[%d].tool_calls[%d] must have an id, type \"function\", a function name and arguments", i, j)
		}
		m.ToolCalls = append(m.ToolCalls, ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: *c.Function.Arguments})
	}
	return nil
}

// contentItem is a content item as sent.
type contentItem struct {
	Type     string  `json:"type"`
	Text     *string `json:"text"`
	ImageURL *struct {
		URL    string `json:"url"`
		Detail string `json:"detail"`
	} `json:"image_url"`
	Document json.RawMessage `json:"document"`
}

// parseContent accepts a string or an array of items: text everywhere,
// image_url in user messages, document in tool messages.
func (s *Server) parseContent(r *http.Request, i int, raw json.RawMessage, m *message) *Failure {
	if json.Unmarshal(raw, &m.Content) == nil {
		return nil
	}
	var items []contentItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return bad("messages[%d].content must be a string or an array of content items", i)
	}
	var b strings.Builder
	for j, it := range items {
		switch {
		case it.Type == "text" && it.Text != nil:
			b.WriteString(*it.Text)
		case it.Type == "image_url" && m.Role == "user":
			if it.ImageURL == nil || it.ImageURL.URL == "" {
				return bad("messages[%d].content[%d].image_url.url is required", i, j)
			}
			switch it.ImageURL.Detail {
			case "", "auto", "low", "high":
			default:
				return bad("messages[%d].content[%d].image_url.detail must be one of auto, low, high", i, j)
			}
			if f := s.checkImage(r, i, j, it.ImageURL.URL); f != nil {
				return f
			}
			m.Images++
		case it.Type == "document" && m.Role == "tool" && len(it.Document) > 0:
			b.Write(it.Document)
		default:
			return bad("messages[%d].content[%d]: type %q is not valid in a %s message", i, j, it.Type, m.Role)
		}
	}
	m.Content = b.String()
	return nil
}

var dataURL = regexp.MustCompile(`^data:image/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/]+={0,2})$`)

// maxImage bounds an image the fake fetches.
const maxImage = 20 << 20

// checkImage wants a base64 data URL or an http(s) URL of a PNG, JPEG,
// GIF or WebP image, which it fetches as Cohere does.
func (s *Server) checkImage(r *http.Request, i, j int, url string) *Failure {
	var b []byte
	switch {
	case strings.HasPrefix(url, "data:"):
		m := dataURL.FindStringSubmatch(url)
		if m == nil {
			return bad("messages[%d].content[%d].image_url.url: invalid data URL: want data:image/<png|jpeg|gif|webp>;base64,…", i, j)
		}
		b, _ = base64.StdEncoding.DecodeString(m[2])
	case strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://"):
		var ok bool
		if b, ok = s.fetch(r, url); !ok {
			return bad("messages[%d].content[%d].image_url.url: could not download the image", i, j)
		}
	default:
		return bad("messages[%d].content[%d].image_url.url must be a base64 data URL or an http(s) URL", i, j)
	}
	switch http.DetectContentType(b) {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return nil
	}
	return bad("messages[%d].content[%d].image_url.url: unsupported image format (png, jpeg, gif, webp)", i, j)
}

func (s *Server) fetch(r *http.Request, url string) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxImage+1))
	return b, err == nil && len(b) <= maxImage
}
