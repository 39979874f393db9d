package schema_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/schema"
)

func TestParseTags_TrimsDropsAndBounds(t *testing.T) {
	t.Parallel()
	if got := schema.ParseTags(" free, ,paid,free,"); !reflect.DeepEqual(got, []string{"free", "paid"}) {
		t.Fatalf("ParseTags = %q", got)
	}
	long := strings.Repeat("x", schema.MaxTagLen+1)
	if got := schema.ParseTags(long + ",ok"); !reflect.DeepEqual(got, []string{"ok"}) {
		t.Fatalf("ParseTags kept a long tag: %q", got)
	}
	many := strings.Repeat("a,", 3*schema.MaxTags)
	for i := range 3 * schema.MaxTags {
		many += "t" + strings.Repeat("z", i) + ","
	}
	if got := schema.ParseTags(many); len(got) != schema.MaxTags {
		t.Fatalf("ParseTags kept %d tags", len(got))
	}
	if got := schema.ParseTags(""); got != nil {
		t.Fatalf("ParseTags(\"\") = %q", got)
	}
}

// LiteLLM's requests carry metadata.tags as a list (and may carry
// top-level tags): a worker must not refuse them as bad_request.
func TestDecodeRequest_TagsInMetadataAndTopLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       []string
	}{
		{"metadata list", `{"messages":[{"role":"user","content":"x"}],"metadata":{"tags":["free","team-a"],"k":"v"}}`, []string{"free", "team-a"}},
		{"metadata string", `{"messages":[{"role":"user","content":"x"}],"metadata":{"tags":"free, team-a"}}`, []string{"free", "team-a"}},
		{"top level", `{"messages":[{"role":"user","content":"x"}],"tags":["paid"],"metadata":{"tags":["free"]}}`, []string{"paid"}},
		{"top level string", `{"messages":[{"role":"user","content":"x"}],"tags":"paid"}`, []string{"paid"}},
		{"none", `{"messages":[{"role":"user","content":"x"}],"metadata":{"tags":null}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := schema.DecodeRequest(schema.JSON, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := req.JobTags(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("JobTags = %q, want %q", got, tt.want)
			}
		})
	}
	_, err := schema.DecodeRequest(schema.JSON, []byte(`{"messages":[{"role":"user","content":"x"}],"metadata":{"tags":[1]}}`))
	wantBadRequest(t, err, "metadata.tags")
	_, err = schema.DecodeRequest(schema.JSON, []byte(`{"messages":[{"role":"user","content":"x"}],"metadata":{"n":3}}`))
	wantBadRequest(t, err, "metadata.n")
}

func TestDecodeRequest_MsgpackTags(t *testing.T) {
	t.Parallel()
	body, err := msgpack.Marshal(map[string]any{
		"messages": []any{map[string]any{"role": "user", "content": "x"}},
		"metadata": map[string]any{"tags": []any{"free", "b"}, "k": "v"},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := schema.DecodeRequest(schema.MsgPack, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := req.JobTags(); !reflect.DeepEqual(got, []string{"free", "b"}) || req.Metadata["k"] != "v" {
		t.Fatalf("JobTags = %q, metadata %v", got, req.Metadata)
	}
	// A request encoded by llmq's own codec keeps its tags.
	out, err := schema.MsgPack.Marshal(&schema.Request{Messages: []schema.Message{{Role: "user", Content: "x"}}, Tags: schema.TagList{"paid"}})
	if err != nil {
		t.Fatal(err)
	}
	if req, err = schema.DecodeRequest(schema.MsgPack, out); err != nil || !reflect.DeepEqual(req.JobTags(), []string{"paid"}) {
		t.Fatalf("round trip: %v, %q", err, req.JobTags())
	}
}
