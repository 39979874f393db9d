package openaitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// request is a validated chat-completions request.
type request struct {
	Model               string
	Messages            []message
	MaxTokens           *int
	MaxCompletionTokens *int
	Temperature         *float64
	TopP                *float64
	Stop                []string
	Stream              bool
	IncludeUsage        bool
	User                string
}

type message struct {
	Role    string
	Content string
	Name    string
}

// limit is the output limit asked for, 0 for none.
func (r *request) limit() int {
	switch {
	case r.MaxTokens != nil:
		return *r.MaxTokens
	case r.MaxCompletionTokens != nil:
		return *r.MaxCompletionTokens
	}
	return 0
}

// isArgument reports whether the fake implements a request argument; it
// rejects any other as OpenAI rejects arguments it does not know.
func isArgument(k string) bool {
	switch k {
	case "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
		"stream_options", "user":
		return true
	}
	return false
}

func isRole(r string) bool {
	switch r {
	case "system", "developer", "user", "assistant":
		return true
	}
	return false
}

// parseRequest validates a body as the real API does. Azure OpenAI takes
// the model from the URL's deployment: there model may be left out.
func parseRequest(contentType string, raw []byte, modelRequired bool) (*request, *Failure) {
	notJSON := BadRequest("We could not parse the JSON body of your request. The API expects a JSON payload "+
		"sent with Content-Type: application/json.", "")
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
		return nil, &notJSON
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		return nil, &notJSON
	}
	for _, k := range sortedKeys(body) {
		if !isArgument(k) {
			f := BadRequest("Unrecognized request argument supplied: "+k, "")
			return nil, &f
		}
	}
	req := &request{}
	if _, ok := body["model"]; ok || modelRequired {
		if f := parseModel(body, req); f != nil {
			return nil, f
		}
	}
	if f := parseMessages(body["messages"], req); f != nil {
		return nil, f
	}
	if f := parseSampling(body, req); f != nil {
		return nil, f
	}
	if f := parseStreaming(body, req); f != nil {
		return nil, f
	}
	return req, nil
}

func parseModel(body map[string]json.RawMessage, req *request) *Failure {
	raw, ok := body["model"]
	if !ok || isNull(raw) {
		f := BadRequest("you must provide a model parameter", "")
		return &f
	}
	if err := json.Unmarshal(raw, &req.Model); err != nil {
		return invalidType("model", "a string", raw)
	}
	if req.Model == "" {
		f := BadRequest("you must provide a model parameter", "model")
		return &f
	}
	return nil
}

func parseMessages(raw json.RawMessage, req *request) *Failure {
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
	for i, m := range list {
		msg, f := parseMessage(i, m)
		if f != nil {
			return f
		}
		req.Messages = append(req.Messages, msg)
	}
	return nil
}

func parseMessage(i int, raw json.RawMessage) (message, *Failure) {
	at := fmt.Sprintf("messages[%d]", i)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return message{}, invalidType(at, "an object", raw)
	}
	for _, k := range sortedKeys(fields) {
		if k != "role" && k != "content" && k != "name" {
			f := BadRequest(fmt.Sprintf("Unrecognized request argument supplied: %s.%s", at, k), at+"."+k)
			return message{}, &f
		}
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
		f := Failure{Status: http.StatusBadRequest, Error: NewAPIError(fmt.Sprintf(
			"Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user' and 'developer'.", m.Role),
			"invalid_request_error", at+".role", "invalid_value")}
		return message{}, &f
	}
	content, ok := fields["content"]
	if !ok || isNull(content) {
		return message{}, ptr(missing(at + ".content"))
	}
	text, f := parseContent(at+".content", content)
	if f != nil {
		return message{}, f
	}
	m.Content = text
	if name, ok := fields["name"]; ok && !isNull(name) {
		if err := json.Unmarshal(name, &m.Name); err != nil {
			return message{}, invalidType(at+".name", "a string", name)
		}
	}
	return m, nil
}

// parseContent accepts a string or an array of text parts.
func parseContent(at string, raw json.RawMessage) (string, *Failure) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalidType(at, "a string or an array of content parts", raw)
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" || p.Text == nil {
			f := Failure{Status: http.StatusBadRequest, Error: NewAPIError(
				fmt.Sprintf("Invalid content part %d: the fake supports only {\"type\":\"text\",\"text\":...}", j),
				"invalid_request_error", fmt.Sprintf("%s[%d]", at, j), "invalid_value")}
			return "", &f
		}
		b.WriteString(*p.Text)
	}
	return b.String(), nil
}

func parseSampling(body map[string]json.RawMessage, req *request) *Failure {
	var f *Failure
	if req.MaxTokens, f = intAtLeast(body, "max_tokens", 1); f != nil {
		return f
	}
	if req.MaxCompletionTokens, f = intAtLeast(body, "max_completion_tokens", 1); f != nil {
		return f
	}
	if req.Temperature, f = decimalIn(body, "temperature", 0, 2); f != nil {
		return f
	}
	if req.TopP, f = decimalIn(body, "top_p", 0, 1); f != nil {
		return f
	}
	if raw, ok := body["user"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &req.User); err != nil {
			return invalidType("user", "a string", raw)
		}
	}
	if raw, ok := body["stop"]; ok && !isNull(raw) {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			req.Stop = []string{one}
		} else if err := json.Unmarshal(raw, &req.Stop); err != nil {
			return invalidType("stop", "a string or an array of strings", raw)
		}
		if len(req.Stop) > 4 {
			f := Failure{Status: http.StatusBadRequest, Error: NewAPIError(
				fmt.Sprintf("Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length %d instead.", len(req.Stop)),
				"invalid_request_error", "stop", "array_above_max_length")}
			return &f
		}
	}
	return nil
}

func parseStreaming(body map[string]json.RawMessage, req *request) *Failure {
	if raw, ok := body["stream"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &req.Stream); err != nil {
			return invalidType("stream", "a boolean", raw)
		}
	}
	raw, ok := body["stream_options"]
	if !ok || isNull(raw) {
		return nil
	}
	if !req.Stream {
		f := BadRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
		return &f
	}
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(raw, &opts); err != nil || opts == nil {
		return invalidType("stream_options", "an object", raw)
	}
	for _, k := range sortedKeys(opts) {
		if k != "include_usage" {
			f := BadRequest("Unrecognized request argument supplied: stream_options."+k, "stream_options."+k)
			return &f
		}
	}
	if iu, ok := opts["include_usage"]; ok && !isNull(iu) {
		if err := json.Unmarshal(iu, &req.IncludeUsage); err != nil {
			return invalidType("stream_options.include_usage", "a boolean", iu)
		}
	}
	return nil
}

func intAtLeast(body map[string]json.RawMessage, name string, min int) (*int, *Failure) {
	raw, ok := body[name]
	if !ok || isNull(raw) {
		return nil, nil
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
	if err != nil {
		return nil, invalidType(name, "an integer", raw)
	}
	if n < min {
		f := Failure{Status: http.StatusBadRequest, Error: NewAPIError(
			fmt.Sprintf("Invalid '%s': integer below minimum value. Expected a value >= %d, but got %d instead.", name, min, n),
			"invalid_request_error", name, "integer_below_min_value")}
		return nil, &f
	}
	return &n, nil
}

func decimalIn(body map[string]json.RawMessage, name string, lo, hi float64) (*float64, *Failure) {
	raw, ok := body[name]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, invalidType(name, "a decimal", raw)
	}
	if v < lo || v > hi {
		f := Failure{Status: http.StatusBadRequest, Error: NewAPIError(
			fmt.Sprintf("Invalid '%s': decimal out of range. Expected a value between %g and %g, but got %g instead.", name, lo, hi, v),
			"invalid_request_error", name, "invalid_value")}
		return nil, &f
	}
	return &v, nil
}

func missing(param string) Failure {
	return Failure{Status: http.StatusBadRequest, Error: NewAPIError(
		fmt.Sprintf("Missing required parameter: '%s'.", param), "invalid_request_error", param, "missing_required_parameter")}
}

func invalidType(param, want string, raw json.RawMessage) *Failure {
	return &Failure{Status: http.StatusBadRequest, Error: NewAPIError(
		fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", param, want, jsonKind(raw)),
		"invalid_request_error", param, "invalid_type")}
}

func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if bytes.ContainsAny(t, ".eE") {
		return "a decimal"
	}
	return "an integer"
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func ptr(f Failure) *Failure { return &f }

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
