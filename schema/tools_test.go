package schema_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
)

// fullRequest uses every field a tool loop, structured output and an image
// bring, with a schema whose keys are not in sorted order.
const fullRequest = `{"model":"m","messages":[` +
	`{"role":"system","content":"be brief"},` +
	`{"role":"user","content":[{"type":"text","text":"what is in "},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]},` +
	`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"look","arguments":"{\"zoom\":2}"}},{"id":"call_2","type":"function","function":{"name":"look","arguments":"{}"}}]},` +
	`{"role":"tool","content":"a cat","tool_call_id":"call_1"},` +
	`{"role":"tool","content":[{"type":"text","text":"a dog"}],"tool_call_id":"call_2"}],` +
	`"tools":[{"type":"function","function":{"name":"look","description":"Look closer","parameters":{"type":"object","properties":{"zoom":{"type":"integer","minimum":1},"area":{"type":"string","enum":["a","b"]}},"required":["zoom"]},"strict":true}}],` +
	`"tool_choice":{"type":"function","function":{"name":"look"}},"parallel_tool_calls":false,` +
	`"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"number"}}},"strict":true}},` +
	`"seed":7,"presence_penalty":0.5,"frequency_penalty":-0.5,"logprobs":true,"top_logprobs":3,"n":2,` +
	`"stream":true,"stream_options":{"include_usage":true},"reasoning_effort":"low"}`

func TestRequest_FullRequest_SurvivesJSONAndMsgpackUnchanged(t *testing.T) {
	t.Parallel()
	req, err := schema.DecodeRequest(schema.JSON, []byte(fullRequest))
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Messages[1]; got.Text() != "what is in " || !got.HasImages() || got.Parts[1].ImageURL.Detail != "low" {
		t.Fatalf("image message = %+v", got)
	}
	if got := req.Messages[4].Content; got != "a dog" {
		t.Fatalf("tool content parts joined = %q", got)
	}
	packed, err := schema.MsgPack.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	back, err := schema.DecodeRequest(schema.MsgPack, packed)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(req)
	got, _ := json.Marshal(back)
	if string(got) != string(want) {
		t.Fatalf("after msgpack:\n got %s\nwant %s", got, want)
	}
	// The schema keeps its key order through msgpack: a model writes the
	// properties in the order given.
	params := string(back.Tools[0].Function.Parameters)
	if strings.Index(params, `"zoom"`) > strings.Index(params, `"area"`) {
		t.Fatalf("parameters reordered: %s", params)
	}
	if s := string(back.ResponseFormat.JSONSchema.Schema); !strings.HasPrefix(s, `{"type":"object","properties":{"z":`) {
		t.Fatalf("schema reordered: %s", s)
	}
	// An assistant message with only tool calls has null content, as
	// OpenAI writes it.
	if !strings.Contains(string(got), `{"role":"assistant","content":null,"tool_calls"`) {
		t.Fatalf("assistant tool-call message not written with null content: %s", got)
	}
}

func TestRequest_Validate_NamesFieldAndIndex(t *testing.T) {
	t.Parallel()
	big := "data:image/png;base64," + strings.Repeat("A", 30<<20/3*4)
	tests := []struct {
		name, body, want string
	}{
		{"tool message answering no call",
			`{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_9","content":"r"}]}`,
			`messages[1].tool_call_id: "call_9" matches no tool call of an earlier assistant message`},
		{"tool message before its call",
			`{"messages":[{"role":"tool","tool_call_id":"c","content":"r"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
			`messages[0].tool_call_id: "c" matches no tool call`},
		{"tool message without an id",
			`{"messages":[{"role":"tool","content":"r"}]}`, `messages[0].tool_call_id: required`},
		{"tool call without an id",
			`{"messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
			`messages[0].tool_calls[0].id: required`},
		{"tool call without a name",
			`{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"arguments":"{}"}}]}]}`,
			`messages[0].tool_calls[0].function.name: required`},
		{"tool calls on a user message",
			`{"messages":[{"role":"user","content":"x","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
			`messages[0].tool_calls: only assistant messages`},
		{"parameters that are not an object",
			`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"g","parameters":["a"]}}]}`,
			`tools[1].function.parameters: must be a JSON Schema object`},
		{"tool of another type",
			`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"code_interpreter","function":{"name":"f"}}]}`,
			`tools[0].type: "code_interpreter" is not "function"`},
		{"bad function name",
			`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"get weather"}}]}`,
			`tools[0].function.name: "get weather" must be 1 to 64`},
		{"function declared twice",
			`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]}`,
			`tools[1].function.name: "f" is declared twice`},
		{"tool_choice naming no tool",
			`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`,
			`tool_choice.function.name: "g" is not one of the tools`},
		{"tool_choice required without tools",
			`{"messages":[{"role":"user","content":"x"}],"tool_choice":"required"}`, `tool_choice: "required" without tools`},
		{"tool_choice unknown mode",
			`{"messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}`, `tool_choice: "sometimes" is not one of`},
		{"schema that is not an object",
			`{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":"string"}}}`,
			`response_format.json_schema.schema: must be a JSON Schema object`},
		{"json_schema without its schema block",
			`{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}}`,
			`response_format.json_schema: required`},
		{"unknown response format",
			`{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}`,
			`response_format.type: "yaml" is not one of`},
		{"image over the size limit",
			`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"` + big + `"}}]}]}`,
			`messages[0].content[0].image_url.url: image of 31457280 bytes is over the limit of 20971520`},
		{"image URL of another scheme",
			`{"messages":[{"role":"user","content":"x"},{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}`,
			`messages[1].content[0].image_url.url: want an http(s) URL or a data: URI`},
		{"data URI that is not base64",
			`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`,
			`messages[0].content[0].image_url.url: data URI must be base64`},
		{"data URI that is not an image",
			`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:text/plain;base64,YQ=="}}]}]}`,
			`messages[0].content[0].image_url.url: data URI of type "text/plain"`},
		{"image detail unknown",
			`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/a.png","detail":"max"}}]}]}`,
			`messages[0].content[0].image_url.detail: "max" is not one of auto, low, high`},
		{"image in a system message",
			`{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/a.png"}}]}]}`,
			`messages[0].content[0]: images are allowed in user messages only`},
		{"penalty out of range", `{"messages":[{"role":"user","content":"x"}],"presence_penalty":3}`, `presence_penalty: must be between -2 and 2`},
		{"n out of range", `{"messages":[{"role":"user","content":"x"}],"n":0}`, `n: must be between 1 and 128`},
		{"top_logprobs without logprobs", `{"messages":[{"role":"user","content":"x"}],"top_logprobs":2}`, `top_logprobs: requires logprobs: true`},
		{"reasoning effort unknown", `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"}`, `reasoning_effort: "max" is not one of`},
		{"embedding with messages", `{"messages":[{"role":"user","content":"x"}],"input":"a"}`, `input: an embedding job has no messages`},
		{"embedding of nothing", `{"input":[]}`, `input: at least one text is required`},
		{"embedding of an empty text", `{"input":["a",""]}`, `input[1]: empty text`},
		{"embedding of tokens", `{"input":[[1,2]]}`, `token arrays are not supported`},
		{"embedding streamed", `{"input":"a","stream":true}`, `stream: embedding jobs are not streamed`},
		{"embedding encoding unknown", `{"input":"a","encoding_format":"int8"}`, `encoding_format: "int8" is not one of float, base64`},
		{"dimensions on a chat job", `{"messages":[{"role":"user","content":"x"}],"dimensions":8}`, `dimensions, encoding_format: only for embedding jobs`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, codec := range []schema.Codec{schema.JSON, schema.MsgPack} {
				body := []byte(tt.body)
				if codec == schema.MsgPack {
					body = jsonToMsgpack(t, body)
				}
				_, err := schema.DecodeRequest(codec, body)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("%s: err = %v, want it to contain %q", codec, err, tt.want)
				}
			}
		})
	}
}

func TestRequest_Check_ImageLimitIsConfigurable(t *testing.T) {
	t.Parallel()
	req, err := schema.DecodeRequest(schema.JSON, []byte(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,`+strings.Repeat("A", 400)+`"}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Check(schema.Limits{MaxImageBytes: 100}); err == nil || !strings.Contains(err.Error(), "image of 300 bytes is over the limit of 100") {
		t.Fatalf("Check = %v", err)
	}
}

func TestRequest_Embedding_InputStringOrArray(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]int{`{"input":"one"}`: 1, `{"input":["a","b","c"],"dimensions":8}`: 3} {
		for _, codec := range []schema.Codec{schema.JSON, schema.MsgPack} {
			b := []byte(body)
			if codec == schema.MsgPack {
				b = jsonToMsgpack(t, b)
			}
			req, err := schema.DecodeRequest(codec, b)
			if err != nil {
				t.Fatalf("%s %s: %v", codec, body, err)
			}
			if !req.IsEmbedding() || len(req.Input) != want {
				t.Fatalf("%s %s: embedding=%v input=%q", codec, body, req.IsEmbedding(), req.Input)
			}
		}
	}
}

func TestVector_Base64RoundTripsFloat32s(t *testing.T) {
	t.Parallel()
	v := schema.Vector{Floats: []float32{0.5, -1.25, 3}}
	v.Encode(schema.EncodingBase64)
	if v.Floats != nil || v.Base64 == "" {
		t.Fatalf("encoded = %+v", v)
	}
	for _, codec := range []schema.Codec{schema.JSON, schema.MsgPack} {
		data, err := codec.Marshal(&schema.Embedding{Object: schema.ObjectEmbedding, Embedding: v})
		if err != nil {
			t.Fatal(err)
		}
		var back schema.Embedding
		if err := codec.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if got := back.Embedding.Floats; len(got) != 3 || got[0] != 0.5 || got[1] != -1.25 || got[2] != 3 {
			t.Fatalf("%s: floats = %v", codec, got)
		}
	}
}

// jsonToMsgpack re-encodes a JSON body as msgpack, with whole numbers as
// integers (as a msgpack producer writes them).
func jsonToMsgpack(t testing.TB, body []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return mustMsgpack(t, integers(v))
}

func integers(v any) any {
	switch v := v.(type) {
	case float64:
		if v == float64(int64(v)) {
			return int64(v)
		}
	case []any:
		for i := range v {
			v[i] = integers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = integers(v[k])
		}
	}
	return v
}
