package schema

import (
	"github.com/vmihailenco/msgpack/v5"
)

// Hand-written msgpack codecs of the tool types a request or a message
// holds (see msgpackmap.go for the rules they keep).

// encodeToolCalls writes an assistant message's tool calls.
func encodeToolCalls(e *msgpack.Encoder, calls []ToolCall) error {
	if calls == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(calls)); err != nil {
		return err
	}
	for i := range calls {
		c := &calls[i]
		w := mapWriter{e: e}
		w.begin(3)
		w.str("id", c.ID)
		w.str("type", c.Type)
		w.key("function")
		w.begin(2)
		w.str("name", c.Function.Name)
		w.str("arguments", c.Function.Arguments)
		if w.err != nil {
			return w.err
		}
	}
	return nil
}

// decodeToolCalls reads an assistant message's tool calls, keys into buf.
func decodeToolCalls(d *msgpack.Decoder, buf []byte) ([]ToolCall, error) {
	return decodeSlice(d, buf, (*ToolCall).decodeMsgpack)
}

func (c *ToolCall) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
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
		case "id":
			c.ID, err = d.DecodeString()
		case "type":
			c.Type, err = decodeCommon(d, buf)
		case "function":
			err = c.Function.decodeMsgpack(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *FunctionCall) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	if n < 0 {
		*f = FunctionCall{}
	}
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "name":
			f.Name, err = d.DecodeString()
		case "arguments":
			f.Arguments, err = d.DecodeString()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// encodeTools writes a request's tools.
func encodeTools(e *msgpack.Encoder, tools []Tool) error {
	if tools == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(tools)); err != nil {
		return err
	}
	for i := range tools {
		t := &tools[i]
		f := &t.Function
		w := mapWriter{e: e}
		w.begin(2)
		w.str("type", t.Type)
		w.key("function")
		w.begin(1 + count(f.Description != "", len(f.Parameters) > 0, f.Strict != nil))
		w.str("name", f.Name)
		if f.Description != "" {
			w.str("description", f.Description)
		}
		if len(f.Parameters) > 0 {
			w.key("parameters")
			w.set(f.Parameters.EncodeMsgpack(e))
		}
		if f.Strict != nil {
			w.bool("strict", *f.Strict)
		}
		if w.err != nil {
			return w.err
		}
	}
	return nil
}

// decodeTools reads a request's tools, keys into buf.
func decodeTools(d *msgpack.Decoder, buf []byte) ([]Tool, error) {
	return decodeSlice(d, buf, (*Tool).decodeMsgpack)
}

func (t *Tool) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
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
		case "type":
			t.Type, err = decodeCommon(d, buf)
		case "function":
			err = t.Function.decodeMsgpack(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *Function) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	if n < 0 {
		*f = Function{}
	}
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "name":
			f.Name, err = d.DecodeString()
		case "description":
			f.Description, err = d.DecodeString()
		case "parameters":
			err = f.Parameters.DecodeMsgpack(d)
		case "strict":
			f.Strict, err = decodeBoolPtr(d)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// encodeMsgpack writes a response format.
func (r *ResponseFormat) encodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(1 + count(r.JSONSchema != nil))
	w.str("type", r.Type)
	if s := r.JSONSchema; s != nil {
		w.key("json_schema")
		w.begin(1 + count(s.Description != "", len(s.Schema) > 0, s.Strict != nil))
		w.str("name", s.Name)
		if s.Description != "" {
			w.str("description", s.Description)
		}
		if len(s.Schema) > 0 {
			w.key("schema")
			w.set(s.Schema.EncodeMsgpack(e))
		}
		if s.Strict != nil {
			w.bool("strict", *s.Strict)
		}
	}
	return w.err
}

// decodeResponseFormat reads a response format, nil for nil.
func decodeResponseFormat(d *msgpack.Decoder, buf []byte) (*ResponseFormat, error) {
	n, err := decodeMapHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	r := new(ResponseFormat)
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "type":
			r.Type, err = d.DecodeString()
		case "json_schema":
			r.JSONSchema, err = decodeJSONSchema(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

func decodeJSONSchema(d *msgpack.Decoder, buf []byte) (*JSONSchema, error) {
	n, err := decodeMapHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	s := new(JSONSchema)
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "name":
			s.Name, err = d.DecodeString()
		case "description":
			s.Description, err = d.DecodeString()
		case "schema":
			err = s.Schema.DecodeMsgpack(d)
		case "strict":
			s.Strict, err = decodeBoolPtr(d)
		default:
			err = d.Skip()
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// encodeMsgpack writes stream options.
func (o *StreamOptions) encodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(count(o.IncludeUsage))
	if o.IncludeUsage {
		w.bool("include_usage", true)
	}
	return w.err
}

// decodeStreamOptions reads stream options, nil for nil.
func decodeStreamOptions(d *msgpack.Decoder, buf []byte) (*StreamOptions, error) {
	n, err := decodeMapHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	o := new(StreamOptions)
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "include_usage":
			o.IncludeUsage, err = d.DecodeBool()
		default:
			err = d.Skip()
		}
		if err != nil {
			return nil, err
		}
	}
	return o, nil
}
