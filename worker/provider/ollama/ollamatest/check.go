package ollamatest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// checkChat checks the messages, tools, format and think of a chat with
// messages, as Ollama does and, where marked, more strictly. It returns
// the status and error to answer, or 0 and nil.
func checkChat(req *ChatRequest) (int, error) {
	if err := checkFormat(req.Format); err != nil {
		return http.StatusBadRequest, err
	}
	if err := checkThink(req.Think); err != nil {
		return http.StatusBadRequest, err
	}
	for i, t := range req.Tools {
		// Stricter than Ollama, which takes any type and an empty name.
		if t.Type != "function" {
			return http.StatusBadRequest, fmt.Errorf("tools[%d]: invalid tool type %q: only \"function\" is supported", i, t.Type)
		}
		if strings.TrimSpace(t.Function.Name) == "" {
			return http.StatusBadRequest, fmt.Errorf("tools[%d]: function name is required", i)
		}
		if p := bytes.TrimSpace(t.Function.Parameters); len(p) > 0 && p[0] != '{' && string(p) != "null" {
			return http.StatusBadRequest, fmt.Errorf(
				"json: cannot unmarshal %s into Go struct field ToolFunction.tools.function.parameters of type api.ToolFunctionParameters", jsonKind(p))
		}
	}
	called := map[string]bool{} // functions called by earlier assistant messages
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return http.StatusBadRequest, fmt.Errorf(
				"messages[%d]: invalid role %q: Ollama chat templates know system, user, assistant and tool", i, m.Role)
		}
		for j, c := range m.ToolCalls {
			args := bytes.TrimSpace(c.Function.Arguments)
			if len(args) == 0 || args[0] != '{' {
				return http.StatusBadRequest, fmt.Errorf(
					"json: cannot unmarshal %s into Go struct field ToolCallFunction.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments", jsonKind(args))
			}
			// Stricter than Ollama: a call names its function, and only
			// an assistant calls.
			if c.Function.Name == "" {
				return http.StatusBadRequest, fmt.Errorf("messages[%d].tool_calls[%d]: function name is required", i, j)
			}
			if m.Role != "assistant" {
				return http.StatusBadRequest, fmt.Errorf("messages[%d]: only assistant messages have tool_calls", i)
			}
			called[c.Function.Name] = true
		}
		// Stricter than Ollama: a tool result names the function it
		// answers (tool_name), which an earlier assistant message called.
		if m.Role == "tool" {
			switch {
			case m.ToolName == "":
				return http.StatusBadRequest, fmt.Errorf("messages[%d]: a tool message needs tool_name", i)
			case !called[m.ToolName]:
				return http.StatusBadRequest, fmt.Errorf("messages[%d]: tool_name %q answers no earlier tool call", i, m.ToolName)
			}
		}
		for j, img := range m.Images {
			if status, err := checkImage(img); err != nil {
				return status, fmt.Errorf("messages[%d].images[%d]: %w", i, j, err)
			}
		}
	}
	return 0, nil
}

// checkFormat accepts what Ollama accepts: nothing, "json", or a JSON
// Schema object.
func checkFormat(raw json.RawMessage) error {
	f := bytes.TrimSpace(raw)
	switch {
	case len(f) == 0, string(f) == "null", string(f) == `""`, string(f) == `"json"`, f[0] == '{':
		return nil
	}
	return fmt.Errorf("invalid format: %s: expected \"json\" or a JSON schema", f)
}

// checkThink accepts a boolean, or the levels "high", "medium", "low".
func checkThink(raw json.RawMessage) error {
	t := bytes.TrimSpace(raw)
	switch string(t) {
	case "", "null", "true", "false", `"high"`, `"medium"`, `"low"`:
		return nil
	}
	return fmt.Errorf("invalid think value: %s (must be a boolean or \"high\", \"medium\", \"low\")", t)
}

// checkImage checks an image as Ollama decodes it: base64 (a data: URI or
// a URL is a 400), then bytes an image decoder knows (else a 500).
func checkImage(img string) (int, error) {
	b, err := base64.StdEncoding.DecodeString(img)
	if err != nil {
		var corrupt base64.CorruptInputError
		if errors.As(err, &corrupt) {
			return http.StatusBadRequest, fmt.Errorf("illegal base64 data at input byte %d", int64(corrupt))
		}
		return http.StatusBadRequest, err
	}
	if !strings.HasPrefix(http.DetectContentType(b), "image/") {
		return http.StatusInternalServerError, errors.New("failed to process inputs: image: unknown format")
	}
	return 0, nil
}

// jsonKind names the JSON type of v as encoding/json's errors do.
func jsonKind(v []byte) string {
	if len(v) == 0 {
		return "null"
	}
	switch v[0] {
	case '"':
		return "string"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}
