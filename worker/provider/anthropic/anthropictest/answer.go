package anthropictest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Answer is a scripted reply (Config.Respond): text, then tool_use
// blocks.
type Answer struct {
	// Text is the reply's text; it may be empty when tools are used.
	Text string
	// ToolUses are the tools the model calls, in order.
	ToolUses []ToolUse
}

// ToolUse is a tool_use block of a scripted answer.
type ToolUse struct {
	// ID is the block's id; "" gets toolu_fake<request>_<n>.
	ID string
	// Name is a tool the request declared.
	Name string
	// Input is the call's input, a JSON object; "" is {}.
	Input string
}

// toolUse is a tool_use block of an answer, its input compact.
type toolUse struct {
	id, name string
	input    json.RawMessage
}

// ImageTokens is what the fake counts an image as, in input tokens.
const ImageTokens = 100

// scripted answers req with cfg.Respond, as a model would under the
// request's tool_choice: none calls no tool, disable_parallel_tool_use
// at most one, and a forced tool_choice only the tool it names. A script
// that calls an undeclared tool, or no tool when one is forced, is a
// mistake of the test: 500 api_error saying so.
func (s *Server) scripted(req *Request, requestID string) (string, []toolUse, *Failure) {
	ans := s.cfg.Respond(req)
	declared := map[string]bool{}
	for _, t := range req.Tools {
		declared[t.Name] = true
	}
	c := req.ToolChoice
	var out []toolUse
	for k, u := range ans.ToolUses {
		if !declared[u.Name] {
			return "", nil, scriptError("tool_use %q names no declared tool", u.Name)
		}
		in := strings.TrimSpace(u.Input)
		if in == "" {
			in = "{}"
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(in), &obj); err != nil {
			return "", nil, scriptError("tool_use %q input is not a JSON object: %v", u.Name, err)
		}
		compact, _ := json.Marshal(obj)
		if c != nil && c.Type == "tool" && c.Name != nil && *c.Name != u.Name {
			continue
		}
		id := u.ID
		if id == "" {
			id = fmt.Sprintf("toolu_fake%s_%d", strings.TrimPrefix(requestID, "req_fake"), k)
		}
		out = append(out, toolUse{id: id, name: u.Name, input: compact})
	}
	switch {
	case c != nil && c.Type == "none":
		out = nil
	case c != nil && (c.Type == "any" || c.Type == "tool") && len(out) == 0:
		return "", nil, scriptError("tool_choice %q forces a tool use the script does not make", c.Type)
	}
	if c != nil && c.DisableParallelToolUse != nil && *c.DisableParallelToolUse && len(out) > 1 {
		out = out[:1]
	}
	return ans.Text, out, nil
}

func scriptError(format string, args ...any) *Failure {
	return &Failure{Status: http.StatusInternalServerError, Type: "api_error",
		Message: "anthropictest: the test's Respond script: " + fmt.Sprintf(format, args...)}
}
