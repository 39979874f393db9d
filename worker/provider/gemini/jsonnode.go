package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// maxSchemaDepth bounds the nesting of a JSON value the adapter walks (a
// tool's parameters, a response schema), so that a hostile schema cannot
// recurse deep.
const maxSchemaDepth = 64

// jsonNode is a parsed JSON value whose objects keep their key order, which
// a schema's propertyOrdering needs and encoding/json's maps lose.
type jsonNode struct {
	kind  byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	keys  []string
	kids  []*jsonNode // object values (parallel to keys) or array items
	str   string
	num   json.Number
	truth bool
}

// parseJSON reads raw into a jsonNode; it fails on invalid JSON, trailing
// data, or nesting deeper than maxSchemaDepth.
func parseJSON(raw []byte) (*jsonNode, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, err := parseNode(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return n, nil
}

func parseNode(dec *json.Decoder, depth int) (*jsonNode, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxSchemaDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		n := &jsonNode{kind: 'a'}
		if v == '{' {
			n.kind = 'o'
		}
		for dec.More() {
			if n.kind == 'o' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			kid, err := parseNode(dec, depth+1)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kid)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &jsonNode{kind: 's', str: v}, nil
	case json.Number:
		return &jsonNode{kind: 'n', num: v}, nil
	case bool:
		return &jsonNode{kind: 'b', truth: v}, nil
	case nil:
		return &jsonNode{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// get returns the value of key in an object node, or nil.
func (n *jsonNode) get(key string) *jsonNode {
	if n == nil || n.kind != 'o' {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.kids[i]
		}
	}
	return nil
}

// appendJSON appends n as compact JSON.
func (n *jsonNode) appendJSON(out []byte) []byte {
	switch n.kind {
	case 'o':
		out = append(out, '{')
		for i, k := range n.keys {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendString(out, k)
			out = append(out, ':')
			out = n.kids[i].appendJSON(out)
		}
		return append(out, '}')
	case 'a':
		out = append(out, '[')
		for i, k := range n.kids {
			if i > 0 {
				out = append(out, ',')
			}
			out = k.appendJSON(out)
		}
		return append(out, ']')
	case 's':
		return appendString(out, n.str)
	case 'n':
		return append(out, n.num...)
	case 'b':
		return strconv.AppendBool(out, n.truth)
	}
	return append(out, "null"...)
}

// appendString appends s as a JSON string.
func appendString(out []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(out, b...)
}
