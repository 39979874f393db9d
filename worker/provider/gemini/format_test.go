package gemini_test

import (
	"context"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

func TestResponseFormat_JSONObjectAsksForJSON(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := userRequest("list colours")
	req.ResponseFormat = &schema.ResponseFormat{Type: schema.FormatJSONObject}
	resp, err := newProvider(t, srv).Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	g := srv.Requests()[0].Body.GenerationConfig
	if g == nil || g.ResponseMimeType != "application/json" || g.ResponseSchema != nil {
		t.Fatalf("generationConfig = %+v", g)
	}
	jsonEqual(t, "content", []byte(resp.Text()), `{"echo":"list colours"}`)
}

func TestResponseFormat_JSONSchemaAnsweredInItsShape(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := userRequest("a person")
	req.ResponseFormat = &schema.ResponseFormat{Type: schema.FormatJSONSchema, JSONSchema: &schema.JSONSchema{
		Name: "person", Strict: ptr(true), Schema: schema.RawJSON(`{"type":"object","additionalProperties":false,
		"properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":18},
		"tags":{"type":"array","items":{"type":"string","enum":["a","b"]}},"nick":{"type":["string","null"]}},
		"required":["name","age","tags","nick"]}`)}}
	for _, stream := range []bool{false, true} {
		var resp *schema.Response
		var err error
		if stream {
			_, resp, err = collect(t, newProvider(t, srv), req)
		} else {
			resp, err = newProvider(t, srv).Complete(context.Background(), req)
		}
		if err != nil {
			t.Fatal(err)
		}
		// The fake writes a value of the schema it received, properties in
		// propertyOrdering: the order of the JSON Schema.
		if got, want := resp.Text(), `{"name":"text","age":18,"tags":["a"],"nick":"text"}`; got != want {
			t.Errorf("stream %v: content %s, want %s", stream, got, want)
		}
	}
	g := srv.Requests()[0].Body.GenerationConfig
	if g.ResponseMimeType != "application/json" {
		t.Errorf("responseMimeType %q", g.ResponseMimeType)
	}
	jsonEqual(t, "responseSchema", g.ResponseSchema, `{"type":"OBJECT","properties":{"name":{"type":"STRING"},
		"age":{"type":"INTEGER","minimum":18},"tags":{"type":"ARRAY","items":{"type":"STRING","enum":["a","b"]}},
		"nick":{"type":"STRING","nullable":true}},"required":["name","age","tags","nick"],
		"propertyOrdering":["name","age","tags","nick"]}`)
}

func TestResponseFormat_TextSendsNothing(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := userRequest("hi")
	req.ResponseFormat = &schema.ResponseFormat{Type: schema.FormatText}
	if _, err := newProvider(t, srv).Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if g := srv.Requests()[0].Body.GenerationConfig; g != nil {
		t.Errorf("generationConfig = %+v", g)
	}
}

func TestResponseFormat_BadSchemaNamesTheField(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := userRequest("hi")
	req.ResponseFormat = &schema.ResponseFormat{Type: schema.FormatJSONSchema, JSONSchema: &schema.JSONSchema{
		Name: "x", Schema: schema.RawJSON(`{"type":"object","properties":{"a":{"$ref":"#/$defs/missing"}}}`)}}
	_, err := newProvider(t, srv).Complete(context.Background(), req)
	e := wantCode(t, err, schema.CodeBadRequest)
	if want := "response_format.json_schema.schema.properties.a.$ref"; !strings.Contains(e.Message, want) {
		t.Errorf("message %q does not name %s", e.Message, want)
	}
}
