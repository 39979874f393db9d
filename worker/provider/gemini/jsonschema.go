package gemini

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/llmq/llmq/schema"
)

// geminiSchema is Gemini's Schema: a subset of OpenAPI 3.0's schema object
// (v1beta google.ai.generativelanguage.v1beta.Schema).
type geminiSchema struct {
	Type             string                   `json:"type,omitempty"`
	Format           string                   `json:"format,omitempty"`
	Title            string                   `json:"title,omitempty"`
	Description      string                   `json:"description,omitempty"`
	Nullable         bool                     `json:"nullable,omitempty"`
	Enum             []string                 `json:"enum,omitempty"`
	Items            *geminiSchema            `json:"items,omitempty"`
	MinItems         json.Number              `json:"minItems,omitempty"`
	MaxItems         json.Number              `json:"maxItems,omitempty"`
	Properties       map[string]*geminiSchema `json:"properties,omitempty"`
	Required         []string                 `json:"required,omitempty"`
	PropertyOrdering []string                 `json:"propertyOrdering,omitempty"`
	MinProperties    json.Number              `json:"minProperties,omitempty"`
	MaxProperties    json.Number              `json:"maxProperties,omitempty"`
	MinLength        json.Number              `json:"minLength,omitempty"`
	MaxLength        json.Number              `json:"maxLength,omitempty"`
	Pattern          string                   `json:"pattern,omitempty"`
	Minimum          json.Number              `json:"minimum,omitempty"`
	Maximum          json.Number              `json:"maximum,omitempty"`
	AnyOf            []*geminiSchema          `json:"anyOf,omitempty"`
	Default          json.RawMessage          `json:"default,omitempty"`
}

// Gemini's Type enum values.
const (
	typeObject = "OBJECT"
	typeArray  = "ARRAY"
)

// maxSchemaNodes bounds the schemas one conversion produces, so that
// $refs used over and over cannot blow a small schema up.
const maxSchemaNodes = 10000

// geminiType maps a JSON Schema type onto Gemini's Type enum; ok is false
// for a name that is no JSON Schema type.
func geminiType(t string) (g string, ok bool) {
	switch t {
	case "string", "number", "integer", "boolean":
		return strings.ToUpper(t), true
	case "array":
		return typeArray, true
	case "object":
		return typeObject, true
	}
	return "", false
}

// schemaConverter turns a JSON Schema into a Gemini Schema. It keeps what
// Gemini's Schema has, converts what has an equivalent (a type list with
// "null", anyOf with a null branch, oneOf, const, local $refs, a one-item
// allOf), and drops the rest (additionalProperties, $schema, $id, $defs,
// strict, examples and example — Gemini's example is for root schemas only —
// exclusiveMinimum/Maximum, multipleOf, uniqueItems, patternProperties,
// propertyNames, not, if/then/else, …).
type schemaConverter struct {
	root  *jsonNode
	field string          // the request field, for errors
	refs  map[string]bool // $refs being expanded, to refuse cycles
	nodes int             // schemas produced so far
}

// convertSchema converts raw, the JSON Schema in the request field named
// field; an error is a bad_request naming the field and the place in the
// schema.
func convertSchema(raw schema.RawJSON, field string) (*geminiSchema, error) {
	root, err := parseJSON(raw)
	if err != nil {
		return nil, schema.Errorf(schema.CodeBadRequest, "%s: %s: invalid JSON Schema: %v", name, field, err)
	}
	c := &schemaConverter{root: root, field: field, refs: map[string]bool{}}
	return c.convert(root, "", "", 0)
}

func (c *schemaConverter) fail(at, format string, args ...any) error {
	where := c.field
	if at != "" {
		where += at
	}
	return schema.Errorf(schema.CodeBadRequest, "%s: %s: %s", name, where, fmt.Sprintf(format, args...))
}

// convert converts node n found at path at (".properties.x" etc.). A
// non-empty typ overrides n's type (one branch of a type list).
func (c *schemaConverter) convert(n *jsonNode, at, typ string, depth int) (*geminiSchema, error) {
	if depth > maxSchemaDepth {
		return nil, c.fail(at, "nested deeper than %d", maxSchemaDepth)
	}
	if c.nodes++; c.nodes > maxSchemaNodes {
		return nil, c.fail(at, "expands to more than %d schemas", maxSchemaNodes)
	}
	if n.kind == 'b' && n.truth { // true: any value
		return &geminiSchema{}, nil
	}
	if n.kind != 'o' {
		return nil, c.fail(at, "a schema must be an object")
	}
	if ref := n.get("$ref"); ref != nil {
		return c.ref(n, ref, at, depth)
	}
	if all := n.get("allOf"); all != nil {
		if all.kind != 'a' || len(all.kids) != 1 {
			return nil, c.fail(at+".allOf", "only an allOf of one schema can be sent to Gemini")
		}
		out, err := c.convert(all.kids[0], at+".allOf[0]", "", depth+1)
		if err != nil {
			return nil, err
		}
		c.annotate(out, n)
		return out, nil
	}
	if typ == "" {
		if t := n.get("type"); t != nil && t.kind == 'a' {
			return c.typeList(n, t, at, depth)
		}
	}
	out := &geminiSchema{}
	for _, key := range []string{"anyOf", "oneOf"} {
		if v := n.get(key); v != nil {
			s, err := c.anyOf(n, v, at+"."+key, depth)
			if err != nil || s != nil {
				return s, err
			}
		}
	}
	if err := c.fields(out, n, at, typ, depth); err != nil {
		return nil, err
	}
	return out, nil
}

// fields copies the keywords Gemini's Schema has from n to out.
func (c *schemaConverter) fields(out *geminiSchema, n *jsonNode, at, typ string, depth int) error {
	if typ == "" {
		if t := n.get("type"); t != nil {
			if t.kind != 's' {
				return c.fail(at+".type", "must be a string or an array of strings")
			}
			typ = t.str
		}
	}
	if typ != "" {
		if typ == "null" {
			out.Nullable = true
		} else if g, ok := geminiType(typ); ok {
			out.Type = g
		} else {
			return c.fail(at+".type", "%q is not a JSON Schema type", typ)
		}
	}
	c.annotate(out, n)
	for i, k := range n.keys {
		v := n.kids[i]
		var err error
		switch k {
		case "format", "pattern":
			if v.kind != 's' {
				return c.fail(at+"."+k, "must be a string")
			}
			if k == "format" {
				out.Format = v.str
			} else {
				out.Pattern = v.str
			}
		case "enum":
			err = c.enum(out, v, at+".enum")
		case "const":
			if v.kind == 's' {
				out.Enum = []string{v.str}
			}
		case "minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength", "minimum", "maximum":
			if v.kind != 'n' {
				return c.fail(at+"."+k, "must be a number")
			}
			*c.number(out, k) = v.num
		case "default":
			out.Default = v.appendJSON(nil)
		case "required":
			if v.kind != 'a' {
				return c.fail(at+".required", "must be an array of strings")
			}
			for j, r := range v.kids {
				if r.kind != 's' {
					return c.fail(fmt.Sprintf("%s.required[%d]", at, j), "must be a string")
				}
				out.Required = append(out.Required, r.str)
			}
		case "items":
			if v.kind == 'a' {
				return c.fail(at+".items", "tuple items (an array of schemas) cannot be sent to Gemini")
			}
			out.Items, err = c.convert(v, at+".items", "", depth+1)
		case "properties":
			err = c.properties(out, v, at+".properties", depth)
		}
		if err != nil {
			return err
		}
	}
	// A schema that describes an object, an array or an enum without
	// saying so gets the type Gemini needs to use its properties, items or
	// enum (Gemini takes an enum for STRING only).
	if out.Type == "" && out.Properties != nil {
		out.Type = typeObject
	}
	if out.Type == "" && len(out.Enum) > 0 {
		out.Type = "STRING"
	}
	if out.Type == "" && out.Items != nil {
		out.Type = typeArray
	}
	return nil
}

// annotate copies n's title and description onto out, unless out has its
// own (from a $ref or allOf target), and its nullability.
func (c *schemaConverter) annotate(out *geminiSchema, n *jsonNode) {
	if d := n.get("description"); d != nil && d.kind == 's' && out.Description == "" {
		out.Description = d.str
	}
	if t := n.get("title"); t != nil && t.kind == 's' && out.Title == "" {
		out.Title = t.str
	}
	if v := n.get("nullable"); v != nil && v.kind == 'b' && v.truth {
		out.Nullable = true
	}
}

func (c *schemaConverter) number(out *geminiSchema, key string) *json.Number {
	switch key {
	case "minItems":
		return &out.MinItems
	case "maxItems":
		return &out.MaxItems
	case "minProperties":
		return &out.MinProperties
	case "maxProperties":
		return &out.MaxProperties
	case "minLength":
		return &out.MinLength
	case "maxLength":
		return &out.MaxLength
	case "minimum":
		return &out.Minimum
	}
	return &out.Maximum
}

// enum keeps string values; null makes the schema nullable. Gemini's enum
// holds strings only, so another value is a bad_request.
func (c *schemaConverter) enum(out *geminiSchema, v *jsonNode, at string) error {
	if v.kind != 'a' {
		return c.fail(at, "must be an array")
	}
	out.Enum = make([]string, 0, len(v.kids))
	for j, e := range v.kids {
		switch e.kind {
		case 's':
			out.Enum = append(out.Enum, e.str)
		case 'z':
			out.Nullable = true
		default:
			return c.fail(fmt.Sprintf("%s[%d]", at, j), "Gemini takes string enum values only")
		}
	}
	return nil
}

// properties converts each property, in order, and records that order in
// propertyOrdering.
func (c *schemaConverter) properties(out *geminiSchema, v *jsonNode, at string, depth int) error {
	if v.kind != 'o' {
		return c.fail(at, "must be an object")
	}
	out.Properties = make(map[string]*geminiSchema, len(v.keys))
	out.PropertyOrdering = make([]string, 0, len(v.keys))
	for j, k := range v.keys {
		p, err := c.convert(v.kids[j], at+"."+k, "", depth+1)
		if err != nil {
			return err
		}
		if _, dup := out.Properties[k]; !dup {
			out.PropertyOrdering = append(out.PropertyOrdering, k)
		}
		out.Properties[k] = p
	}
	return nil
}

// typeList converts "type": ["string", "null"] to a nullable type, and a
// list of several types to anyOf, one branch per type.
func (c *schemaConverter) typeList(n, t *jsonNode, at string, depth int) (*geminiSchema, error) {
	var types []string
	nullable := false
	for j, e := range t.kids {
		if e.kind != 's' {
			return nil, c.fail(fmt.Sprintf("%s.type[%d]", at, j), "must be a string")
		}
		if e.str == "null" {
			nullable = true
			continue
		}
		types = append(types, e.str)
	}
	if len(types) == 0 {
		return nil, c.fail(at+".type", "a schema of type null alone cannot be sent to Gemini")
	}
	if len(types) == 1 {
		out, err := c.convert(n, at, types[0], depth)
		if err == nil && nullable {
			out.Nullable = true
		}
		return out, err
	}
	out := &geminiSchema{Nullable: nullable}
	c.annotate(out, n)
	for _, typ := range types {
		b, err := c.convert(n, at, typ, depth+1)
		if err != nil {
			return nil, err
		}
		b.Description, b.Title = "", ""
		out.AnyOf = append(out.AnyOf, b)
	}
	return out, nil
}

// anyOf converts anyOf (or oneOf, which Gemini does not have) to anyOf,
// a {"type":"null"} branch making it nullable; a single branch left is
// merged into the schema. It returns nil, nil for an anyOf that is not an
// array (then ignored).
func (c *schemaConverter) anyOf(n, v *jsonNode, at string, depth int) (*geminiSchema, error) {
	if v.kind != 'a' {
		return nil, c.fail(at, "must be an array of schemas")
	}
	var branches []*geminiSchema
	nullable := false
	for j, b := range v.kids {
		if t := b.get("type"); t != nil && t.kind == 's' && t.str == "null" && len(b.keys) == 1 {
			nullable = true
			continue
		}
		s, err := c.convert(b, fmt.Sprintf("%s[%d]", at, j), "", depth+1)
		if err != nil {
			return nil, err
		}
		branches = append(branches, s)
	}
	if len(branches) == 0 {
		return nil, c.fail(at, "a schema of type null alone cannot be sent to Gemini")
	}
	var out *geminiSchema
	if len(branches) == 1 {
		out = branches[0]
	} else {
		out = &geminiSchema{AnyOf: branches}
	}
	if nullable {
		out.Nullable = true
	}
	c.annotate(out, n)
	return out, nil
}

// ref inlines a local reference ("#/$defs/Name", "#/definitions/Name");
// n's own title and description win over the target's. A reference
// elsewhere, or one that refers back to itself, is a bad_request: Gemini's
// Schema has no references.
func (c *schemaConverter) ref(n, ref *jsonNode, at string, depth int) (*geminiSchema, error) {
	if ref.kind != 's' {
		return nil, c.fail(at+".$ref", "must be a string")
	}
	var target *jsonNode
	for _, prefix := range []string{"#/$defs/", "#/definitions/"} {
		if key, ok := strings.CutPrefix(ref.str, prefix); ok {
			target = c.root.get(strings.TrimSuffix(prefix[2:], "/")).get(key)
		}
	}
	if target == nil {
		return nil, c.fail(at+".$ref", "%q does not name a schema in $defs or definitions", ref.str)
	}
	if c.refs[ref.str] {
		return nil, c.fail(at+".$ref", "%q is recursive; Gemini's schema has no references", ref.str)
	}
	c.refs[ref.str] = true
	out, err := c.convert(target, at, "", depth+1)
	delete(c.refs, ref.str)
	if err != nil {
		return nil, err
	}
	if d := n.get("description"); d != nil && d.kind == 's' {
		out.Description = d.str
	}
	if t := n.get("title"); t != nil && t.kind == 's' {
		out.Title = t.str
	}
	return out, nil
}
