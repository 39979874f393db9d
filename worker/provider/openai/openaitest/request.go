package openaitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strconv"
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
	Tools               []tool
	ToolChoice          string // "", none, auto, required, or the name of the function forced
	ParallelToolCalls   *bool
	ResponseFormat      string // "", text, json_object, json_schema
	Seed                *int
	PresencePenalty     *float64
	FrequencyPenalty    *float64
	Logprobs            bool
	TopLogprobs         int
	N                   int
	ReasoningEffort     string
}

type message struct {
	Role       string
	Content    string // the text; image parts are counted in Images
	Null       bool   // content null or left out
	Images     int
	Name       string
	ToolCalls  []ToolCall
	ToolCallID string
}

// tool is a declared function tool.
type tool struct {
	Name       string
	Parameters json.RawMessage
}

// choices is the number of choices asked for.
func (r *request) choices() int { return max(r.N, 1) }

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
		"stream_options", "user", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed",
		"presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "n", "reasoning_effort":
		return true
	}
	return false
}

func isRole(r string) bool {
	switch r {
	case "system", "developer", "user", "assistant", "tool":
		return true
	}
	return false
}

// parseRequest validates a body as the real API does. Azure OpenAI takes
// the model from the URL's deployment: there model may be left out.
func (s *Server) parseRequest(r *http.Request, raw []byte, modelRequired bool) (*request, *Failure) {
	body, f := parseBody(r.Header.Get("Content-Type"), raw, isArgument)
	if f != nil {
		return nil, f
	}
	req := &request{}
	if _, ok := body["model"]; ok || modelRequired {
		if f := parseModel(body, req); f != nil {
			return nil, f
		}
	}
	if f := parseTools(body, req); f != nil {
		return nil, f
	}
	if f := s.parseMessages(r, body["messages"], req); f != nil {
		return nil, f
	}
	if f := parseSampling(body, req); f != nil {
		return nil, f
	}
	if f := parseStreaming(body, req); f != nil {
		return nil, f
	}
	if f := parseChoices(body, req); f != nil {
		return nil, f
	}
	if f := parseResponseFormat(body, req); f != nil {
		return nil, f
	}
	return req, nil
}

// parseBody reads a JSON object body and refuses arguments that known
// does not accept.
func parseBody(contentType string, raw []byte, known func(string) bool) (map[string]json.RawMessage, *Failure) {
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
		if !known(k) {
			f := BadRequest("Unrecognized request argument supplied: "+k, "")
			return nil, &f
		}
	}
	return body, nil
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
	if req.PresencePenalty, f = decimalIn(body, "presence_penalty", -2, 2); f != nil {
		return f
	}
	if req.FrequencyPenalty, f = decimalIn(body, "frequency_penalty", -2, 2); f != nil {
		return f
	}
	if raw, ok := body["seed"]; ok && !isNull(raw) {
		n, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
		if err != nil {
			return invalidType("seed", "an integer", raw)
		}
		req.Seed = &n
	}
	if raw, ok := body["reasoning_effort"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &req.ReasoningEffort); err != nil {
			return invalidType("reasoning_effort", "a string", raw)
		}
		switch req.ReasoningEffort {
		case "minimal", "low", "medium", "high":
		default:
			return invalidValue("reasoning_effort", req.ReasoningEffort, "'minimal', 'low', 'medium', and 'high'")
		}
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

// parseChoices reads n, logprobs and top_logprobs.
func parseChoices(body map[string]json.RawMessage, req *request) *Failure {
	n, f := intAtLeast(body, "n", 1)
	if f != nil {
		return f
	}
	if n != nil {
		if *n > 128 {
			return intAbove("n", 128, *n)
		}
		req.N = *n
	}
	if raw, ok := body["logprobs"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &req.Logprobs); err != nil {
			return invalidType("logprobs", "a boolean", raw)
		}
	}
	top, f := intAtLeast(body, "top_logprobs", 0)
	if f != nil {
		return f
	}
	if top != nil {
		if *top > 20 {
			return intAbove("top_logprobs", 20, *top)
		}
		if !req.Logprobs {
			f := BadRequest("Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is specified.", "top_logprobs")
			return &f
		}
		req.TopLogprobs = *top
	}
	return nil
}

func intAbove(name string, limit, n int) *Failure {
	return &Failure{Status: http.StatusBadRequest, Error: NewAPIError(
		fmt.Sprintf("Invalid '%s': integer above maximum value. Expected a value <= %d, but got %d instead.", name, limit, n),
		"invalid_request_error", name, "integer_above_max_value")}
}

func invalidValue(param, got, supported string) *Failure {
	return &Failure{Status: http.StatusBadRequest, Error: NewAPIError(
		fmt.Sprintf("Invalid value: '%s'. Supported values are: %s.", got, supported),
		"invalid_request_error", param, "invalid_value")}
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
