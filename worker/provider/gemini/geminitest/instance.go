package geminitest

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// instance returns a JSON value that matches a Gemini Schema, as a model
// constrained by responseSchema writes one: objects with their properties
// in propertyOrdering order (else as written), the first enum value or of
// anyOf, minimum numbers, minItems items (at least one), "text" for a
// string, null for a nullable schema with no type.
func instance(raw json.RawMessage, depth int) []byte {
	var s struct {
		Type             string            `json:"type"`
		Nullable         bool              `json:"nullable"`
		Enum             []string          `json:"enum"`
		Items            json.RawMessage   `json:"items"`
		MinItems         json.Number       `json:"minItems"`
		Properties       json.RawMessage   `json:"properties"`
		PropertyOrdering []string          `json:"propertyOrdering"`
		Minimum          *float64          `json:"minimum"`
		AnyOf            []json.RawMessage `json:"anyOf"`
	}
	if depth > maxSchemaDepth || json.Unmarshal(raw, &s) != nil {
		return []byte("null")
	}
	if len(s.AnyOf) > 0 {
		return instance(s.AnyOf[0], depth+1)
	}
	if len(s.Enum) > 0 {
		b, _ := json.Marshal(s.Enum[0])
		return b
	}
	switch strings.ToUpper(s.Type) {
	case "STRING":
		return []byte(`"text"`)
	case "INTEGER":
		if s.Minimum != nil {
			return strconv.AppendInt(nil, int64(*s.Minimum), 10)
		}
		return []byte("1")
	case "NUMBER":
		if s.Minimum != nil {
			return strconv.AppendFloat(nil, *s.Minimum, 'g', -1, 64)
		}
		return []byte("1.5")
	case "BOOLEAN":
		return []byte("true")
	case "ARRAY":
		n, _ := s.MinItems.Int64()
		n = min(max(n, 1), 16)
		out := []byte{'['}
		for i := range n {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, instance(s.Items, depth+1)...)
		}
		return append(out, ']')
	case "OBJECT":
		keys, vals, _ := orderedObject(s.Properties)
		order := s.PropertyOrdering
		if len(order) == 0 {
			order = keys
		}
		out := []byte{'{'}
		for _, k := range order {
			j := slices.Index(keys, k)
			if j < 0 {
				continue
			}
			if len(out) > 1 {
				out = append(out, ',')
			}
			kb, _ := json.Marshal(k)
			out = append(append(out, kb...), ':')
			out = append(out, instance(vals[j], depth+1)...)
		}
		return append(out, '}')
	}
	return []byte("null")
}
