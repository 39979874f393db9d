package schema_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/schema"
)

// The hand-written msgpack codecs must be told of every field a struct
// gains, and the compatibility tests can only check the fields their
// generator sets. This walks the bytes of many generated values along the
// Go types and fails for any msgpack key of a hand-coded struct that never
// appears: a new field missing from the generator, the codec, or both.
func TestMsgpack_GeneratorsCoverEveryField(t *testing.T) {
	t.Parallel()
	g := gen{rand.New(rand.NewPCG(7, 7))}
	seen := map[reflect.Type]map[string]bool{}
	walk := func(v any) {
		data, err := schema.MsgPack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var generic any
		if err := msgpack.Unmarshal(data, &generic); err != nil {
			t.Fatal(err)
		}
		coverKeys(reflect.TypeOf(v), generic, seen)
	}
	for range 3000 {
		walk(g.request())
		walk(g.response())
		walk(g.chunk())
		walk(g.heartbeat())
	}
	for _, root := range []any{schema.Request{}, schema.Response{}, schema.Chunk{}, schema.Heartbeat{}} {
		for typ, tags := range structTags(reflect.TypeOf(root), map[reflect.Type]map[string]bool{}) {
			var missing []string
			for tag := range tags {
				if !seen[typ][tag] {
					missing = append(missing, tag)
				}
			}
			slices.Sort(missing)
			if len(missing) > 0 {
				t.Errorf("%s: msgpack keys %v never encoded from the generated values: add them to the generator and the hand-written codec", typ, missing)
			}
		}
	}
}

// msgpackTag is a field's msgpack key, or "" when it has no msgpack tag:
// types coded under other names (Message, ToolChoice) have tests of their
// own against their earlier codecs.
func msgpackTag(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// structTags lists the msgpack keys of every schema struct reachable from
// t whose codec is the map of its fields.
func structTags(t reflect.Type, out map[reflect.Type]map[string]bool) map[reflect.Type]map[string]bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeOf(schema.Request{}).PkgPath() || out[t] != nil {
		return out
	}
	tags := map[string]bool{}
	out[t] = tags
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := msgpackTag(f); tag != "" {
			tags[tag] = true
			structTags(f.Type, out)
		}
	}
	if len(tags) == 0 {
		delete(out, t)
	}
	return out
}

// coverKeys records the keys of v, decoded generically, that are fields of
// t, and goes down into them.
func coverKeys(t reflect.Type, v any, seen map[reflect.Type]map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		if vs, ok := v.([]any); ok {
			for _, e := range vs {
				coverKeys(t.Elem(), e, seen)
			}
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			tag := msgpackTag(f)
			if tag == "" {
				continue
			}
			if fv, ok := m[tag]; ok {
				if seen[t] == nil {
					seen[t] = map[string]bool{}
				}
				seen[t][tag] = true
				coverKeys(f.Type, fv, seen)
			}
		}
	}
}
