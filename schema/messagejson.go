package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// errMessageShape is the error of a message that is not a JSON object.
var errMessageShape = errors.New("message: want a JSON object")

// UnmarshalJSON reads a message in OpenAI's shape. It walks the object's
// members itself and hands only tool calls and content parts to
// encoding/json: through a wire struct, each message cost a decoder of its
// own and 3–4 allocations more (see BenchmarkDecodeRequest).
func (m *Message) UnmarshalJSON(b []byte) error {
	*m = Message{}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			return nil
		}
		return errMessageShape
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		kEnd, err := scanString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : kEnd-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(b[i:kEnd], &k); err != nil {
				return err
			}
			key = []byte(k)
		}
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return errMessageShape
		}
		vStart := skipSpace(b, i+1)
		vEnd, err := scanValue(b, vStart)
		if err != nil {
			return err
		}
		if err := m.setMember(key, b[vStart:vEnd]); err != nil {
			return err
		}
		i = skipSpace(b, vEnd)
		if i >= len(b) {
			return errMessageShape
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			if skipSpace(b, i+1) != len(b) {
				return errMessageShape
			}
			return nil
		default:
			return errMessageShape
		}
	}
}

// messageKeys are the members a message has; encoding/json matches
// member names without regard to case, and so does setMember.
var messageKeys = [...]string{"role", "content", "name", "tool_call_id", "tool_calls"}

func (m *Message) setMember(key, v []byte) error {
	for _, k := range messageKeys {
		if string(key) != k && len(key) == len(k) && bytes.EqualFold(key, []byte(k)) {
			key = []byte(k)
			break
		}
	}
	switch string(key) {
	case "role":
		return jsonString(v, &m.Role, "role")
	case "content":
		if len(v) > 0 && (v[0] == '"' || v[0] == 'n') {
			m.Parts = nil
			m.Content = ""
			return jsonString(v, (*string)(&m.Content), "content")
		}
		var c contentWire
		if err := c.UnmarshalJSON(v); err != nil {
			return err
		}
		m.Content, m.Parts = Content(c.text), c.parts
	case "name":
		return jsonString(v, &m.Name, "name")
	case "tool_call_id":
		return jsonString(v, &m.ToolCallID, "tool_call_id")
	case "tool_calls":
		if string(v) == "null" {
			return nil
		}
		return json.Unmarshal(v, &m.ToolCalls)
	}
	return nil
}

// jsonString sets *dst from a JSON string or null; without escapes the
// string is copied straight from v.
func jsonString(v []byte, dst *string, field string) error {
	switch {
	case string(v) == "null":
		return nil
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 && validUTF8NoControl(inner) {
			*dst = string(inner)
			return nil
		}
		return json.Unmarshal(v, dst)
	}
	return fmt.Errorf("%s: want a string", field)
}

// validUTF8NoControl reports whether s may be used as a JSON string's
// value as it is: valid UTF-8 (encoding/json would replace invalid bytes
// with U+FFFD) with no control characters (invalid JSON: encoding/json
// then gives the error).
func validUTF8NoControl(s []byte) bool {
	for i, c := range s {
		if c < 0x20 {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.Valid(s[i:]) && bytes.IndexFunc(s[i:], func(r rune) bool { return r < 0x20 }) < 0
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the end (one past the closing quote) of the JSON
// string at b[i].
func scanString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errMessageShape
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errMessageShape
}

// scanValue returns the end of the JSON value at b[i]: a string, or
// anything up to the matching close of an object or array, or a literal.
// The value itself is checked by whoever decodes it.
func scanValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errMessageShape
	}
	switch b[i] {
	case '"':
		return scanString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := scanString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errMessageShape
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	if j == i {
		return 0, errMessageShape
	}
	return j, nil
}
