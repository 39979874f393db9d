package ollama

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/llmq/llmq/schema"
)

// MaxToolCalls bounds the tool calls one reply may carry.
const MaxToolCalls = 128

// toolCall maps the call at position index of a reply onto OpenAI's shape:
// type "function", the arguments object as a compact JSON string (keys in
// the order the model wrote them), and an id. Ollama's own id is kept when
// the host gives one; otherwise the id is derived from the position, name
// and arguments, so a streamed and a non-streamed reply of the same answer
// carry the same ids.
func toolCall(w *wireToolCall, index int) (schema.ToolCall, error) {
	if w.Function.Name == "" {
		return schema.ToolCall{}, schema.Errorf(schema.CodeProviderError,
			"ollama: reply's tool call %d has no function name", index)
	}
	args, err := argumentsString(w.Function.Arguments)
	if err != nil {
		return schema.ToolCall{}, schema.Errorf(schema.CodeProviderError,
			"ollama: reply's tool call %d (%s): arguments: %v", index, w.Function.Name, err)
	}
	id := w.ID
	if id == "" {
		id = callID(index, w.Function.Name, args)
	}
	return schema.ToolCall{ID: id, Type: schema.ToolTypeFunction,
		Function: schema.FunctionCall{Name: w.Function.Name, Arguments: args}}, nil
}

// argumentsString returns a call's arguments as OpenAI carries them: the
// object compacted; a string (as a proxy may send) as it is; "{}" for none.
func argumentsString(raw json.RawMessage) (string, error) {
	b := bytes.TrimSpace(raw)
	switch {
	case len(b) == 0 || string(b) == "null":
		return "{}", nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return "", err
	}
	return out.String(), nil
}

// callID returns "call_" and 24 hex digits of a hash of the call's
// position, name and arguments.
func callID(index int, name, args string) string {
	h := sha256.New()
	h.Write([]byte(strconv.Itoa(index)))
	h.Write([]byte{0})
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(args))
	return "call_" + hex.EncodeToString(h.Sum(nil)[:12])
}

// toolCalls maps the calls of a line or reply, numbering them from first
// (the calls already seen in the stream).
func toolCalls(ws []wireToolCall, first int) ([]schema.ToolCall, error) {
	if first+len(ws) > MaxToolCalls {
		return nil, schema.Errorf(schema.CodeProviderError, "ollama: reply has more than %d tool calls", MaxToolCalls)
	}
	out := make([]schema.ToolCall, 0, len(ws))
	for i := range ws {
		tc, err := toolCall(&ws[i], first+i)
		if err != nil {
			return nil, err
		}
		out = append(out, tc)
	}
	return out, nil
}
