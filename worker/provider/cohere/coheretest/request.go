package coheretest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
)

// request is a validated v2 chat request.
type request struct {
	Model      string
	Messages   []message
	Stream     bool
	MaxTokens  int
	Stop       []string
	Tools      []tool
	ToolChoice string // "", REQUIRED or NONE
	Logprobs   bool
	// ResponseFormat is "", "text" or "json_object"; JSONSchema tells
	// whether a json_object carries a schema.
	ResponseFormat string
	JSONSchema     bool
}

type message struct {
	Role, Content string
	Images        int
	ToolCalls     []ToolCall
	ToolCallID    string
}

// tool is a declared function.
type tool struct {
	Name       string
	Parameters json.RawMessage
}

// imageTokens is what one image counts in the input.
const imageTokens = 85

func (r *request) promptWords() int {
	n := 0
	for _, m := range r.Messages {
		n += len(strings.Fields(m.Content)) + imageTokens*m.Images
		for _, c := range m.ToolCalls {
			n += callTokens(c)
		}
	}
	for _, t := range r.Tools {
		n += 1 + len(t.Parameters)/4
	}
	return n
}

// fields the fake implements; Cohere has more (documents, citation
// options, …), which the fake refuses so that tests notice them.
var fields = map[string]bool{
	"model": true, "messages": true, "stream": true, "max_tokens": true, "stop_sequences": true,
	"temperature": true, "p": true, "k": true, "seed": true, "frequency_penalty": true, "presence_penalty": true,
	"tools": true, "strict_tools": true, "tool_choice": true, "response_format": true, "logprobs": true,
}

func (s *Server) parseRequest(r *http.Request, raw []byte) (*request, *Failure) {
	contentType := r.Header.Get("Content-Type")
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
	if f := parseTools(body, req); f != nil {
		return nil, f
	}
	if f := s.parseMessages(r, body["messages"], req); f != nil {
		return nil, f
	}
	if f := parseOptions(body, req); f != nil {
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
	}{{"temperature", 0, 1e9}, {"p", 0.01, 0.99}, {"k", 0, 500}, {"frequency_penalty", 0, 1}, {"presence_penalty", 0, 1}} {
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
