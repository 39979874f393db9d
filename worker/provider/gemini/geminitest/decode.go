package geminitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// maxSchemaDepth bounds how deep the fake follows a schema.
const maxSchemaDepth = 64

func (d *decoder) blob(pm map[string]json.RawMessage, at string) *Blob {
	raw, ok := pm["inlineData"]
	if !ok || isNull(raw) {
		return nil
	}
	at = join(at, "inline_data")
	m := d.object(raw, blobFields(), at, "TYPE_MESSAGE")
	if m == nil {
		return nil
	}
	b := &Blob{}
	d.field(m, "mimeType", at, "TYPE_STRING", &b.MimeType)
	d.field(m, "data", at, "TYPE_BYTES", &b.Data)
	return b
}

func (d *decoder) functionCall(pm map[string]json.RawMessage, at string) *FunctionCall {
	raw, ok := pm["functionCall"]
	if !ok || isNull(raw) {
		return nil
	}
	at = join(at, "function_call")
	m := d.object(raw, functionCallFields(), at, "TYPE_MESSAGE")
	if m == nil {
		return nil
	}
	fc := &FunctionCall{}
	d.field(m, "id", at, "TYPE_STRING", &fc.ID)
	d.field(m, "name", at, "TYPE_STRING", &fc.Name)
	fc.Args = d.structValue(m, "args", at)
	return fc
}

func (d *decoder) functionResponse(pm map[string]json.RawMessage, at string) *FunctionResponse {
	raw, ok := pm["functionResponse"]
	if !ok || isNull(raw) {
		return nil
	}
	at = join(at, "function_response")
	m := d.object(raw, functionResponseFields(), at, "TYPE_MESSAGE")
	if m == nil {
		return nil
	}
	fr := &FunctionResponse{}
	d.field(m, "id", at, "TYPE_STRING", &fr.ID)
	d.field(m, "name", at, "TYPE_STRING", &fr.Name)
	fr.Response = d.structValue(m, "response", at)
	return fr
}

// structValue reads m[name] as a google.protobuf.Struct: a JSON object.
func (d *decoder) structValue(m map[string]json.RawMessage, name, at string) json.RawMessage {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return nil
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		d.invalid(join(at, name), "type.googleapis.com/google.protobuf.Struct", raw)
		return nil
	}
	var out bytes.Buffer
	_ = json.Compact(&out, raw) // the body is valid JSON
	return out.Bytes()
}

func (d *decoder) tool(raw json.RawMessage, at string) Tool {
	var t Tool
	m := d.object(raw, toolFields(), at, "TYPE_MESSAGE")
	if m == nil {
		return t
	}
	for i, fr := range d.list(m, "functionDeclarations", at) {
		fat := fmt.Sprintf("%s.function_declarations[%d]", at, i)
		fm := d.object(fr, functionDeclarationFields(), fat, "TYPE_MESSAGE")
		if fm == nil {
			continue
		}
		var f FunctionDeclaration
		d.field(fm, "name", fat, "TYPE_STRING", &f.Name)
		d.field(fm, "description", fat, "TYPE_STRING", &f.Description)
		if p, ok := fm["parameters"]; ok && !isNull(p) {
			d.schema(p, join(fat, "parameters"), 0)
			f.Parameters = p
		}
		t.FunctionDeclarations = append(t.FunctionDeclarations, f)
	}
	if len(m) > 0 && m["functionDeclarations"] == nil {
		t.Other = raw
	}
	return t
}

func (d *decoder) toolConfig(raw json.RawMessage, at string) *ToolConfig {
	m := d.object(raw, toolConfigFields(), at, "TYPE_MESSAGE")
	if m == nil {
		return nil
	}
	tc := &ToolConfig{}
	if fr, ok := m["functionCallingConfig"]; ok && !isNull(fr) {
		fat := join(at, "function_calling_config")
		fm := d.object(fr, functionCallingConfigFields(), fat, "TYPE_MESSAGE")
		if fm != nil {
			tc.FunctionCallingConfig = &FunctionCallingConfig{}
			d.field(fm, "mode", fat, "TYPE_ENUM", &tc.FunctionCallingConfig.Mode)
			d.field(fm, "allowedFunctionNames", fat, "TYPE_STRING", &tc.FunctionCallingConfig.AllowedFunctionNames)
			switch tc.FunctionCallingConfig.Mode {
			case "", "MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED":
			default:
				d.invalid(join(fat, "mode"), "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode",
					fm["mode"])
			}
		}
	}
	return tc
}

// schema checks a Schema as the API decodes it: known field names only,
// type one of the Type enum's names, enum values strings, nested schemas
// valid.
func (d *decoder) schema(raw json.RawMessage, at string, depth int) {
	if depth > maxSchemaDepth {
		d.vs = append(d.vs, violation{Field: at, Description: "Invalid JSON payload received. Too deep."})
		return
	}
	m := d.object(raw, schemaFields(), at, "TYPE_MESSAGE")
	if m == nil {
		return
	}
	if t, ok := m["type"]; ok {
		var s string
		if json.Unmarshal(t, &s) != nil || !validType(s) {
			d.invalid(join(at, "type"), "type.googleapis.com/google.ai.generativelanguage.v1beta.Type", t)
		}
	}
	var enum []string
	d.field(m, "enum", at, "TYPE_STRING", &enum)
	if len(enum) > 0 {
		var typ string
		_ = json.Unmarshal(m["type"], &typ)
		if strings.ToUpper(typ) != "STRING" {
			d.vs = append(d.vs, violation{Field: join(at, "enum"),
				Description: "* GenerateContentRequest." + join(at, "enum") + ": only allowed for STRING type"})
		}
	}
	var strs []string
	d.field(m, "required", at, "TYPE_STRING", &strs)
	d.field(m, "propertyOrdering", at, "TYPE_STRING", &strs)
	var b bool
	d.field(m, "nullable", at, "TYPE_BOOL", &b)
	var s string
	for _, k := range []string{"format", "title", "description", "pattern"} {
		d.field(m, k, at, "TYPE_STRING", &s)
	}
	for _, k := range []string{"maxItems", "minItems", "minProperties", "maxProperties", "minLength", "maxLength"} {
		d.int64Field(m, k, at)
	}
	var f float64
	d.field(m, "minimum", at, "TYPE_DOUBLE", &f)
	d.field(m, "maximum", at, "TYPE_DOUBLE", &f)
	if items, ok := m["items"]; ok && !isNull(items) {
		d.schema(items, join(at, "items"), depth+1)
	}
	for i, b := range d.list(m, "anyOf", at) {
		d.schema(b, fmt.Sprintf("%s.any_of[%d]", at, i), depth+1)
	}
	if props, ok := m["properties"]; ok && !isNull(props) {
		_, vals, ok := orderedObject(props)
		if !ok {
			d.invalid(join(at, "properties"), "TYPE_MESSAGE", props)
			return
		}
		for i, v := range vals {
			d.schema(v, fmt.Sprintf("%s.properties[%d].value", at, i), depth+1)
		}
	}
}

// int64Field checks an int64 field, which JSON writes as a number or a
// decimal string.
func (d *decoder) int64Field(m map[string]json.RawMessage, name, at string) {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return
	}
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		return
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if _, err := fmt.Sscan(s, &n); err == nil {
			return
		}
	}
	d.invalid(join(at, snake(name)), "TYPE_INT64", raw)
}

// validType reports whether s names a value of the Type enum; the API
// reads enum names in any case.
func validType(s string) bool {
	switch strings.ToUpper(s) {
	case "TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL":
		return true
	}
	return false
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// orderedObject splits a JSON object into its keys and values in the order
// written; ok is false when raw is not an object.
func orderedObject(raw json.RawMessage) (keys []string, vals []json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		keys = append(keys, t.(string))
		vals = append(vals, v)
	}
	return keys, vals, true
}
