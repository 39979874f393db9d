package coheretest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"sort"
	"strings"
)

// request is a validated v2 chat request.
type request struct {
	Model     string
	Messages  []message
	Stream    bool
	MaxTokens int
	Stop      []string
}

type message struct {
	Role, Content string
}

func (r *request) promptWords() int {
	n := 0
	for _, m := range r.Messages {
		n += len(strings.Fields(m.Content))
	}
	return n
}

// fields the fake implements; Cohere has more (tools, documents, …), which
// the fake refuses so that tests notice them.
var fields = map[string]bool{
	"model": true, "messages": true, "stream": true, "max_tokens": true, "stop_sequences": true,
	"temperature": true, "p": true, "k": true, "seed": true,
}

func parseRequest(contentType string, raw []byte) (*request, *Failure) {
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
		f := BadRequest("the body must be JSON sent with Content-Type: application/json")
		return nil, &f
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		f := BadRequest("could not parse the JSON body")
		return nil, &f
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fields[k] {
			f := BadRequest(fmt.Sprintf("unknown field: parameter %s is not a valid field", k))
			return nil, &f
		}
	}
	req := &request{}
	if err := json.Unmarshal(body["model"], &req.Model); err != nil || req.Model == "" {
		f := BadRequest("model must be a non-empty string")
		return nil, &f
	}
	if f := parseMessages(body["messages"], req); f != nil {
		return nil, f
	}
	if raw, ok := body["stream"]; ok {
		if err := json.Unmarshal(raw, &req.Stream); err != nil {
			f := BadRequest("stream must be a boolean")
			return nil, &f
		}
	}
	if raw, ok := body["max_tokens"]; ok {
		if err := json.Unmarshal(raw, &req.MaxTokens); err != nil || req.MaxTokens < 1 {
			f := BadRequest("max_tokens must be a positive integer")
			return nil, &f
		}
	}
	if raw, ok := body["stop_sequences"]; ok {
		if err := json.Unmarshal(raw, &req.Stop); err != nil {
			f := BadRequest("stop_sequences must be an array of strings")
			return nil, &f
		}
		if len(req.Stop) > 5 {
			f := BadRequest(fmt.Sprintf("stop_sequences can have at most 5 items, got %d", len(req.Stop)))
			return nil, &f
		}
	}
	for _, r := range []struct {
		name   string
		lo, hi float64
	}{{"temperature", 0, 1e9}, {"p", 0.01, 0.99}, {"k", 0, 500}} {
		raw, ok := body[r.name]
		if !ok {
			continue
		}
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil || v < r.lo || v > r.hi {
			f := BadRequest(fmt.Sprintf("%s must be a number between %g and %g, got %s", r.name, r.lo, r.hi, bytes.TrimSpace(raw)))
			return nil, &f
		}
	}
	return req, nil
}

func parseMessages(raw json.RawMessage, req *request) *Failure {
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		f := BadRequest("messages must be a non-empty array")
		return &f
	}
	for i, m := range list {
		var msg message
		if err := json.Unmarshal(m["role"], &msg.Role); err != nil {
			f := BadRequest(fmt.Sprintf("messages[%d].role is required", i))
			return &f
		}
		switch msg.Role {
		case "system", "user", "assistant", "tool":
		default:
			f := BadRequest(fmt.Sprintf("messages[%d].role must be one of system, user, assistant, tool; got %q", i, msg.Role))
			return &f
		}
		for k := range m {
			if k != "role" && k != "content" {
				f := BadRequest(fmt.Sprintf("messages[%d]: the fake does not implement %s", i, k))
				return &f
			}
		}
		text, ok := content(m["content"])
		if !ok {
			f := BadRequest(fmt.Sprintf("messages[%d].content must be a string or an array of text content", i))
			return &f
		}
		msg.Content = text
		req.Messages = append(req.Messages, msg)
	}
	return nil
}

// content accepts a string or an array of {"type":"text","text":…}.
func content(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return "", false
		}
		b.WriteString(*p.Text)
	}
	return b.String(), true
}
