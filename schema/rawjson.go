package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// maxRawJSONDepth bounds the nesting of a RawJSON value (a JSON Schema, a
// tool's arguments). Real schemas nest a few levels; 64 leaves room for
// generated ones and keeps a hostile value from recursing deep.
const maxRawJSONDepth = 64

// RawJSON is a JSON value carried as it was written: a JSON Schema (a
// tool's parameters, a response format's schema). In a JSON body it is
// inlined as is; in a msgpack body it travels as the equivalent msgpack
// value (map, array, string, number, bool, nil), with map keys in the
// order written, because a schema's property order is the order a model
// generates them. Providers read it with encoding/json.
type RawJSON []byte

// MarshalJSON returns r, or null when it is empty.
func (r RawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// UnmarshalJSON keeps a copy of b (null keeps nothing).
func (r *RawJSON) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = nil
		return nil
	}
	*r = append((*r)[:0], b...)
	return nil
}

// IsObject reports whether r is a JSON object.
func (r RawJSON) IsObject() bool {
	b := bytes.TrimLeft(r, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// EncodeMsgpack writes r as the msgpack value it stands for.
func (r RawJSON) EncodeMsgpack(e *msgpack.Encoder) error {
	if len(r) == 0 {
		return e.EncodeNil()
	}
	dec := json.NewDecoder(bytes.NewReader(r))
	dec.UseNumber()
	n, err := parseJSON(dec, 0)
	if err != nil {
		return fmt.Errorf("raw JSON: %w", err)
	}
	return n.encode(e)
}

// DecodeMsgpack reads any msgpack value made of maps with string keys,
// arrays, strings, numbers, bools and nil, and keeps it as JSON.
func (r *RawJSON) DecodeMsgpack(d *msgpack.Decoder) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if c == msgpcode.Nil {
		*r = nil
		return d.DecodeNil()
	}
	out, err := msgpackToJSON(d, (*r)[:0], 0)
	if err != nil {
		return err
	}
	*r = out
	return nil
}

// jsonNode is a parsed JSON value whose objects keep their key order.
type jsonNode struct {
	delim  json.Delim // '{' or '[' for objects and arrays, else 0
	keys   []string
	kids   []jsonNode
	scalar json.Token
}

// parseJSON reads one value from dec; one pass, so the cost is linear in
// the value's size.
func parseJSON(dec *json.Decoder, depth int) (jsonNode, error) {
	if depth > maxRawJSONDepth {
		return jsonNode{}, fmt.Errorf("nested deeper than %d", maxRawJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return jsonNode{}, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return jsonNode{scalar: tok}, nil
	}
	n := jsonNode{delim: d}
	for dec.More() {
		if d == '{' {
			k, err := dec.Token()
			if err != nil {
				return jsonNode{}, err
			}
			n.keys = append(n.keys, k.(string))
		}
		kid, err := parseJSON(dec, depth+1)
		if err != nil {
			return jsonNode{}, err
		}
		n.kids = append(n.kids, kid)
	}
	_, err = dec.Token() // the closing delimiter
	return n, err
}

func (n *jsonNode) encode(e *msgpack.Encoder) error {
	switch n.delim {
	case '{':
		if err := e.EncodeMapLen(len(n.kids)); err != nil {
			return err
		}
		for i := range n.kids {
			if err := e.EncodeString(n.keys[i]); err != nil {
				return err
			}
			if err := n.kids[i].encode(e); err != nil {
				return err
			}
		}
		return nil
	case '[':
		if err := e.EncodeArrayLen(len(n.kids)); err != nil {
			return err
		}
		for i := range n.kids {
			if err := n.kids[i].encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	switch v := n.scalar.(type) {
	case nil:
		return e.EncodeNil()
	case bool:
		return e.EncodeBool(v)
	case string:
		return e.EncodeString(v)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return e.EncodeInt(i)
		}
		f, err := v.Float64()
		if err != nil {
			return err
		}
		return e.EncodeFloat64(f)
	}
	return fmt.Errorf("unexpected token %v", n.scalar)
}

var errRawKey = errors.New("raw JSON: map keys must be strings")

func msgpackToJSON(d *msgpack.Decoder, out []byte, depth int) ([]byte, error) {
	if depth > maxRawJSONDepth {
		return nil, fmt.Errorf("raw JSON: nested deeper than %d", maxRawJSONDepth)
	}
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		out = append(out, '{')
		for i := 0; i < n; i++ {
			if i > 0 {
				out = append(out, ',')
			}
			kc, err := d.PeekCode()
			if err != nil {
				return nil, err
			}
			if !msgpcode.IsString(kc) {
				return nil, errRawKey
			}
			k, err := d.DecodeString()
			if err != nil {
				return nil, err
			}
			out = appendJSONString(out, k)
			out = append(out, ':')
			if out, err = msgpackToJSON(d, out, depth+1); err != nil {
				return nil, err
			}
		}
		return append(out, '}'), nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		out = append(out, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				out = append(out, ',')
			}
			if out, err = msgpackToJSON(d, out, depth+1); err != nil {
				return nil, err
			}
		}
		return append(out, ']'), nil
	case c == msgpcode.Nil:
		return append(out, "null"...), d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		b, err := d.DecodeBool()
		return strconv.AppendBool(out, b), err
	case msgpcode.IsString(c):
		s, err := d.DecodeString()
		if err != nil {
			return nil, err
		}
		return appendJSONString(out, s), nil
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := d.DecodeFloat64()
		if err != nil {
			return nil, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errors.New("raw JSON: NaN and infinities have no JSON form")
		}
		return strconv.AppendFloat(out, f, 'g', -1, 64), nil
	case msgpcode.IsFixedNum(c) || (c >= msgpcode.Uint8 && c <= msgpcode.Int64):
		if c == msgpcode.Uint64 {
			u, err := d.DecodeUint64()
			return strconv.AppendUint(out, u, 10), err
		}
		i, err := d.DecodeInt64()
		return strconv.AppendInt(out, i, 10), err
	}
	return nil, fmt.Errorf("raw JSON: msgpack code %#x has no JSON form", c)
}
