package schema

import (
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Message is one turn of a conversation.
//
// On the wire its content is a string, null, or an array of parts. Text
// parts alone are joined into Content; an array with an image keeps every
// part in Parts and leaves Content empty.
type Message struct {
	Role    string
	Content Content
	// Parts holds the content parts when content had an image; nil
	// otherwise.
	Parts []ContentPart
	Name  string
	// ToolCalls are the calls an assistant message made; its content may
	// then be null.
	ToolCalls []ToolCall
	// ToolCallID is the call a tool message answers.
	ToolCallID string
}

// Content is a message's text.
type Content string

// Content part types.
const (
	PartText     = "text"
	PartImageURL = "image_url"
)

// ContentPart is one part of a message's content: text or an image.
type ContentPart struct {
	Type     string    `json:"type" msgpack:"type"`
	Text     string    `json:"text,omitempty" msgpack:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty" msgpack:"image_url,omitempty"`
}

// ImageURL is an image part's source: an http(s) URL or a data: URI
// ("data:image/png;base64,…"), and the detail the model should see it at
// ("auto", "low", "high"; empty is auto).
type ImageURL struct {
	URL    string `json:"url" msgpack:"url"`
	Detail string `json:"detail,omitempty" msgpack:"detail,omitempty"`
}

// Text returns the message's text: Content, or its text parts joined.
func (m *Message) Text() string {
	if m.Parts == nil {
		return string(m.Content)
	}
	var out []byte
	for _, p := range m.Parts {
		if p.Type == PartText {
			out = append(out, p.Text...)
		}
	}
	return string(out)
}

// HasImages reports whether the message has an image part.
func (m *Message) HasImages() bool {
	for _, p := range m.Parts {
		if p.Type == PartImageURL {
			return true
		}
	}
	return false
}

// messageWire is Message as it travels.
type messageWire struct {
	Role       string      `json:"role" msgpack:"role"`
	Content    contentWire `json:"content" msgpack:"content"`
	Name       string      `json:"name,omitempty" msgpack:"name,omitempty"`
	ToolCalls  []ToolCall  `json:"tool_calls,omitempty" msgpack:"tool_calls,omitempty"`
	ToolCallID string      `json:"tool_call_id,omitempty" msgpack:"tool_call_id,omitempty"`
}

func (m *Message) setWire(w *messageWire) {
	*m = Message{Role: w.Role, Content: Content(w.Content.text), Parts: w.Content.parts,
		Name: w.Name, ToolCalls: w.ToolCalls, ToolCallID: w.ToolCallID}
}

// MarshalJSON writes the message in OpenAI's shape. Written by hand: it
// is on every reply the gateway writes, and a wire struct through
// encoding/json cost four allocations per message.
func (m Message) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 48+len(m.Role)+len(m.Content)+len(m.Name))
	b = append(b, `{"role":`...)
	b = appendJSONString(b, m.Role)
	b = append(b, `,"content":`...)
	switch {
	case m.Parts != nil:
		parts, err := json.Marshal(m.Parts)
		if err != nil {
			return nil, err
		}
		b = append(b, parts...)
	case m.Content == "" && len(m.ToolCalls) > 0:
		b = append(b, "null"...)
	default:
		b = appendJSONString(b, string(m.Content))
	}
	if m.Name != "" {
		b = append(b, `,"name":`...)
		b = appendJSONString(b, m.Name)
	}
	if len(m.ToolCalls) > 0 {
		calls, err := json.Marshal(m.ToolCalls)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"tool_calls":`...)
		b = append(b, calls...)
	}
	if m.ToolCallID != "" {
		b = append(b, `,"tool_call_id":`...)
		b = appendJSONString(b, m.ToolCallID)
	}
	return append(b, '}'), nil
}

// EncodeMsgpack writes the message in OpenAI's shape, by hand (see
// MarshalJSON).
func (m *Message) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 2
	for _, set := range [...]bool{m.Name != "", len(m.ToolCalls) > 0, m.ToolCallID != ""} {
		if set {
			n++
		}
	}
	if err := e.EncodeMapLen(n); err != nil {
		return err
	}
	if err := encodeKV(e, "role", m.Role); err != nil {
		return err
	}
	if err := e.EncodeString("content"); err != nil {
		return err
	}
	var err error
	switch {
	case m.Parts != nil:
		err = encodeParts(e, m.Parts)
	case m.Content == "" && len(m.ToolCalls) > 0:
		err = e.EncodeNil()
	default:
		err = e.EncodeString(string(m.Content))
	}
	if err != nil {
		return err
	}
	if m.Name != "" {
		if err := encodeKV(e, "name", m.Name); err != nil {
			return err
		}
	}
	if len(m.ToolCalls) > 0 {
		if err := e.EncodeString("tool_calls"); err != nil {
			return err
		}
		if err := encodeToolCalls(e, m.ToolCalls); err != nil {
			return err
		}
	}
	if m.ToolCallID != "" {
		return encodeKV(e, "tool_call_id", m.ToolCallID)
	}
	return nil
}

func encodeKV(e *msgpack.Encoder, k, v string) error {
	if err := e.EncodeString(k); err != nil {
		return err
	}
	return e.EncodeString(v)
}

// DecodeMsgpack reads a message in OpenAI's shape, by hand (see
// MarshalJSON): the keys are read into a buffer, so only values allocate.
func (m *Message) DecodeMsgpack(d *msgpack.Decoder) error {
	var k keyScratch
	return m.decodeMsgpack(d, k.inner[:])
}

// decodeMsgpack is DecodeMsgpack reading keys into buf.
func (m *Message) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	*m = Message{}
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "role":
			m.Role, err = decodeCommon(d, buf)
		case "content":
			var c contentWire
			if err = c.decodeMsgpack(d, buf); err == nil {
				m.Content, m.Parts = Content(c.text), c.parts
			}
		case "name":
			m.Name, err = d.DecodeString()
		case "tool_calls":
			m.ToolCalls, err = decodeToolCalls(d, buf)
		case "tool_call_id":
			m.ToolCallID, err = d.DecodeString()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// contentWire is a message's content: a string, null, or parts.
type contentWire struct {
	text  string
	parts []ContentPart
	null  bool
}

func (c *contentWire) MarshalJSON() ([]byte, error) {
	switch {
	case c.parts != nil:
		return json.Marshal(c.parts)
	case c.null:
		return []byte("null"), nil
	}
	return json.Marshal(c.text)
}

const errContentShape = "content: want a string or an array of text and image_url parts"

func (c *contentWire) UnmarshalJSON(b []byte) error {
	*c = contentWire{} // of a repeated member, the last wins whole
	switch {
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &c.text)
	case string(b) == "null":
		c.null = true
		return nil
	}
	var parts []ContentPart
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf(errContentShape)
	}
	return c.setParts(parts)
}

func (c *contentWire) EncodeMsgpack(e *msgpack.Encoder) error {
	switch {
	case c.parts != nil:
		return encodeParts(e, c.parts)
	case c.null:
		return e.EncodeNil()
	}
	return e.EncodeString(c.text)
}

func (c *contentWire) DecodeMsgpack(d *msgpack.Decoder) error {
	var buf [32]byte
	return c.decodeMsgpack(d, buf[:])
}

// decodeMsgpack is DecodeMsgpack reading keys into buf.
func (c *contentWire) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	code, err := d.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case isMsgpackString(code):
		c.text, err = d.DecodeString()
		return err
	case isMsgpackNil(code):
		c.null = true
		return d.DecodeNil()
	case isMsgpackArray(code):
		parts, err := decodeParts(d, buf)
		if err != nil {
			return fmt.Errorf(errContentShape)
		}
		return c.setParts(parts)
	}
	return fmt.Errorf(errContentShape)
}

// setParts keeps text-only parts as joined text and any array with an
// image as parts.
func (c *contentWire) setParts(parts []ContentPart) error {
	images := false
	for i, p := range parts {
		switch p.Type {
		case PartText:
		case PartImageURL:
			if p.ImageURL == nil {
				return fmt.Errorf("content[%d].image_url: required", i)
			}
			images = true
		default:
			return fmt.Errorf("content[%d]: part type %q is not supported (text and image_url are)", i, p.Type)
		}
	}
	if images {
		c.parts = parts
		return nil
	}
	var out []byte
	for _, p := range parts {
		out = append(out, p.Text...)
	}
	c.text = string(out)
	return nil
}

// UnmarshalJSON accepts a string, null, or an array of text parts (joined),
// for replies that carry content alone.
func (c *Content) UnmarshalJSON(b []byte) error {
	var w contentWire
	if err := w.UnmarshalJSON(b); err != nil {
		return err
	}
	if w.parts != nil {
		return fmt.Errorf("content: only text parts are accepted here")
	}
	*c = Content(w.text)
	return nil
}
