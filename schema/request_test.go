package schema_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/schema"
)

func ptr[T any](v T) *T { return &v }

func user(text string) []schema.Message {
	return []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}
}

// wantBadRequest fails unless err is a *schema.Error with code bad_request
// whose message contains want.
func wantBadRequest(t *testing.T, err error, want string) {
	t.Helper()
	var e *schema.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want a *schema.Error", err, err)
	}
	if e.Code != schema.CodeBadRequest || e.Status != 400 || e.Type != schema.TypeInvalidRequest {
		t.Fatalf("err = %+v, want bad_request/400/invalid_request_error", e)
	}
	if !strings.Contains(e.Message, want) {
		t.Fatalf("message = %q, want it to contain %q", e.Message, want)
	}
}

func TestValidateEnforcesEachRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  schema.Request
		want string // "" = valid; else a substring of the bad_request message
	}{
		{"minimal request is valid", schema.Request{Messages: user("hi")}, ""},
		{"no messages", schema.Request{}, "messages: at least one message is required"},
		{"empty messages slice", schema.Request{Messages: []schema.Message{}}, "messages: at least one message is required"},
		{"system, developer, user and assistant roles are valid", schema.Request{Messages: []schema.Message{
			{Role: schema.RoleSystem}, {Role: schema.RoleDeveloper}, {Role: schema.RoleUser}, {Role: schema.RoleAssistant},
		}}, ""},
		{"missing role names the message", schema.Request{Messages: []schema.Message{{Role: "user"}, {Content: "x"}}}, "messages[1].role: required"},
		{"unknown role is refused", schema.Request{Messages: []schema.Message{{Role: "function"}}}, `messages[0].role: "function" is not one of system, developer, user, assistant, tool`},
		{"role is case-sensitive", schema.Request{Messages: []schema.Message{{Role: "User"}}}, `messages[0].role: "User"`},
		{"max_tokens 1 is valid", schema.Request{Messages: user("x"), MaxTokens: ptr(1)}, ""},
		{"max_tokens 0", schema.Request{Messages: user("x"), MaxTokens: ptr(0)}, "max_tokens: must be at least 1, got 0"},
		{"max_tokens negative", schema.Request{Messages: user("x"), MaxTokens: ptr(-5)}, "max_tokens: must be at least 1, got -5"},
		{"max_completion_tokens 1 is valid", schema.Request{Messages: user("x"), MaxCompletionTokens: ptr(1)}, ""},
		{"max_completion_tokens 0", schema.Request{Messages: user("x"), MaxCompletionTokens: ptr(0)}, "max_completion_tokens: must be at least 1, got 0"},
		{"temperature 0 and 2 are valid bounds", schema.Request{Messages: user("x"), Temperature: ptr(2.0), TopP: ptr(0.0)}, ""},
		{"temperature 0 is valid", schema.Request{Messages: user("x"), Temperature: ptr(0.0)}, ""},
		{"temperature below 0", schema.Request{Messages: user("x"), Temperature: ptr(-0.1)}, "temperature: must be between 0 and 2, got -0.1"},
		{"temperature above 2", schema.Request{Messages: user("x"), Temperature: ptr(3.0)}, "temperature: must be between 0 and 2, got 3"},
		{"temperature NaN", schema.Request{Messages: user("x"), Temperature: ptr(math.NaN())}, "temperature: must be between 0 and 2"},
		{"temperature +Inf", schema.Request{Messages: user("x"), Temperature: ptr(math.Inf(1))}, "temperature: must be between 0 and 2"},
		{"top_p 1 is valid", schema.Request{Messages: user("x"), TopP: ptr(1.0)}, ""},
		{"top_p below 0", schema.Request{Messages: user("x"), TopP: ptr(-0.5)}, "top_p: must be between 0 and 1, got -0.5"},
		{"top_p above 1", schema.Request{Messages: user("x"), TopP: ptr(1.5)}, "top_p: must be between 0 and 1, got 1.5"},
		{"top_p NaN", schema.Request{Messages: user("x"), TopP: ptr(math.NaN())}, "top_p: must be between 0 and 1"},
		{"four stop sequences are valid", schema.Request{Messages: user("x"), Stop: schema.StopList{"a", "b", "c", "d"}}, ""},
		{"five stop sequences", schema.Request{Messages: user("x"), Stop: schema.StopList{"a", "b", "c", "d", "e"}}, "stop: at most 4 sequences, got 5"},
		{"roles are checked before limits", schema.Request{Messages: []schema.Message{{Role: "bot"}}, MaxTokens: ptr(0)}, "messages[0].role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.req.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			wantBadRequest(t, err, tt.want)
		})
	}
}

func TestLimitPrefersMaxTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  schema.Request
		want int
	}{
		{"neither set", schema.Request{}, 0},
		{"max_tokens only", schema.Request{MaxTokens: ptr(7)}, 7},
		{"max_completion_tokens only", schema.Request{MaxCompletionTokens: ptr(9)}, 9},
		{"both set: max_tokens wins", schema.Request{MaxTokens: ptr(7), MaxCompletionTokens: ptr(9)}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.req.Limit(); got != tt.want {
				t.Fatalf("Limit() = %d, want %d", got, tt.want)
			}
		})
	}
}

type stopHolder struct {
	Stop schema.StopList `json:"stop" msgpack:"stop"`
}

func TestStopListJSONAcceptsStringArrayOrNull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    schema.StopList
		wantErr string
	}{
		{"single string is one sequence", `{"stop":"END"}`, schema.StopList{"END"}, ""},
		{"empty string is one empty sequence", `{"stop":""}`, schema.StopList{""}, ""},
		{"escaped string", `{"stop":"a\nb"}`, schema.StopList{"a\nb"}, ""},
		{"array of strings", `{"stop":["a","b"]}`, schema.StopList{"a", "b"}, ""},
		{"empty array", `{"stop":[]}`, schema.StopList{}, ""},
		{"null means none", `{"stop":null}`, nil, ""},
		{"absent means none", `{}`, nil, ""},
		{"number is refused", `{"stop":5}`, nil, "stop: want a string or an array of strings"},
		{"array of numbers is refused", `{"stop":[1,2]}`, nil, "stop: want a string or an array of strings"},
		{"object is refused", `{"stop":{"a":"b"}}`, nil, "stop: want a string or an array of strings"},
		{"boolean is refused", `{"stop":true}`, nil, "stop: want a string or an array of strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h stopHolder
			err := json.Unmarshal([]byte(tt.in), &h)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.Stop, tt.want) {
				t.Fatalf("stop = %#v, want %#v", h.Stop, tt.want)
			}
		})
	}
}

func TestStopListMsgpackAcceptsStringArrayOrNil(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      any
		want    schema.StopList
		wantErr string
	}{
		{"single string is one sequence", "END", schema.StopList{"END"}, ""},
		{"array of strings", []string{"a", "b"}, schema.StopList{"a", "b"}, ""},
		{"empty array", []string{}, schema.StopList{}, ""},
		{"nil means none", nil, nil, ""},
		{"integer is refused", 5, nil, "stop: want a string or an array of strings"},
		{"array with a number is refused", []any{"a", 1}, nil, "stop: want a string or an array of strings"},
		{"map is refused", map[string]string{"a": "b"}, nil, "stop: want a string or an array of strings"},
		{"bool is refused", true, nil, "stop: want a string or an array of strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := msgpack.Marshal(map[string]any{"stop": tt.in})
			if err != nil {
				t.Fatal(err)
			}
			var h stopHolder
			err = msgpack.Unmarshal(data, &h)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.Stop, tt.want) {
				t.Fatalf("stop = %#v, want %#v", h.Stop, tt.want)
			}
		})
	}
}

func TestContentJSONAcceptsStringNullAndTextParts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    schema.Content
		wantErr string
	}{
		{"string", `{"content":"hello"}`, "hello", ""},
		{"string with escapes", `{"content":"a\u00e9\n"}`, "aé\n", ""},
		{"null is empty", `{"content":null}`, "", ""},
		{"absent is empty", `{}`, "", ""},
		{"text parts are concatenated with nothing between", `{"content":[{"type":"text","text":"a "},{"type":"text","text":"b"}]}`, "a b", ""},
		{"one text part", `{"content":[{"type":"text","text":"only"}]}`, "only", ""},
		{"empty parts array is empty", `{"content":[]}`, "", ""},
		{"audio part is refused by type", `{"content":[{"type":"text","text":"a"},{"type":"input_audio","input_audio":{"data":"x"}}]}`, "", `content[1]: part type "input_audio" is not supported (text and image_url are)`},
		{"image part without image_url is refused", `{"content":[{"type":"image_url"}]}`, "", `content[0].image_url: required`},
		{"part without type is refused", `{"content":[{"text":"a"}]}`, "", `content[0]: part type "" is not supported`},
		{"number is refused", `{"content":5}`, "", "content: want a string or an array of text and image_url parts"},
		{"object is refused", `{"content":{"type":"text"}}`, "", "content: want a string or an array of text and image_url parts"},
		{"array of strings is refused", `{"content":["a"]}`, "", "content: want a string or an array of text and image_url parts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m schema.Message
			err := json.Unmarshal([]byte(tt.in), &m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Content != tt.want {
				t.Fatalf("content = %q, want %q", m.Content, tt.want)
			}
		})
	}
}

func TestContentMsgpackAcceptsStringNilOrParts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      any
		want    schema.Content
		wantErr bool
	}{
		{"string", "hello", "hello", false},
		{"nil is empty", nil, "", false},
		{"text parts are joined", []map[string]string{{"type": "text", "text": "a"}, {"type": "text", "text": "b"}}, "ab", false},
		{"audio part is refused", []map[string]string{{"type": "input_audio"}}, "", true},
		{"integer is refused", 5, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := msgpack.Marshal(map[string]any{"role": "user", "content": tt.in})
			if err != nil {
				t.Fatal(err)
			}
			var m schema.Message
			err = msgpack.Unmarshal(data, &m)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decoded %q, want an error", m.Content)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Content != tt.want {
				t.Fatalf("content = %q, want %q", m.Content, tt.want)
			}
		})
	}
}

func mustMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		codec   schema.Codec
		body    []byte
		wantErr string // "" = valid
		check   func(t *testing.T, r *schema.Request)
	}{
		{name: "empty JSON body", codec: schema.JSON, body: nil, wantErr: "empty body"},
		{name: "empty msgpack body", codec: schema.MsgPack, body: []byte{}, wantErr: "empty body"},
		{name: "whitespace-only body", codec: schema.JSON, body: []byte(" \n\t "), wantErr: "empty body"},
		{name: "malformed JSON", codec: schema.JSON, body: []byte(`{"messages":[`), wantErr: "malformed json body"},
		{name: "JSON with trailing data", codec: schema.JSON, body: []byte(`{"messages":[{"role":"user","content":"x"}]} {}`), wantErr: "malformed json body"},
		{name: "JSON array instead of object", codec: schema.JSON, body: []byte(`[1,2]`), wantErr: "malformed json body"},
		{name: "JSON null body fails validation", codec: schema.JSON, body: []byte(`null`), wantErr: "messages: at least one message is required"},
		{name: "malformed msgpack (reserved byte 0xc1)", codec: schema.MsgPack, body: []byte{0xc1}, wantErr: "malformed msgpack body"},
		{name: "truncated msgpack", codec: schema.MsgPack, body: mustMsgpack(t, map[string]any{"messages": []any{map[string]any{"role": "user"}}})[:5], wantErr: "malformed msgpack body"},
		{name: "JSON body sent as msgpack", codec: schema.MsgPack, body: []byte(`{"messages":[{"role":"user","content":"x"}]}`), wantErr: "malformed msgpack body"},
		{name: "JSON messages of the wrong type", codec: schema.JSON, body: []byte(`{"messages":"hi"}`), wantErr: "malformed json body"},
		{name: "JSON max_tokens as a string", codec: schema.JSON, body: []byte(`{"messages":[{"role":"user"}],"max_tokens":"5"}`), wantErr: "malformed json body"},
		{name: "JSON max_tokens as a float", codec: schema.JSON, body: []byte(`{"messages":[{"role":"user"}],"max_tokens":5.0}`), wantErr: "malformed json body"},
		{name: "JSON temperature as a string", codec: schema.JSON, body: []byte(`{"messages":[{"role":"user"}],"temperature":"hot"}`), wantErr: "malformed json body"},
		{name: "JSON stream as a string", codec: schema.JSON, body: []byte(`{"messages":[{"role":"user"}],"stream":"yes"}`), wantErr: "malformed json body"},
		{name: "JSON metadata with a non-string value", codec: schema.JSON, body: []byte(`{"messages":[{"role":"user"}],"metadata":{"a":1}}`), wantErr: "malformed json body"},
		{name: "JSON image part without its url", codec: schema.JSON, body: []byte(`{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`), wantErr: `content[0].image_url: required`},
		{name: "msgpack messages of the wrong type", codec: schema.MsgPack, body: mustMsgpack(t, map[string]any{"messages": "hi"}), wantErr: "malformed msgpack body"},
		{name: "msgpack max_tokens as a float", codec: schema.MsgPack, body: mustMsgpack(t, map[string]any{"messages": []any{map[string]any{"role": "user"}}, "max_tokens": 5.0}), wantErr: "malformed msgpack body"},
		{name: "msgpack max_tokens as a string", codec: schema.MsgPack, body: mustMsgpack(t, map[string]any{"messages": []any{map[string]any{"role": "user"}}, "max_tokens": "5"}), wantErr: "malformed msgpack body"},
		{name: "msgpack content as an audio part", codec: schema.MsgPack, body: mustMsgpack(t, map[string]any{"messages": []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "input_audio"}}}}}), wantErr: "malformed msgpack body"},
		{name: "msgpack NaN temperature", codec: schema.MsgPack, body: mustMsgpack(t, map[string]any{"messages": []any{map[string]any{"role": "user"}}, "temperature": math.NaN()}), wantErr: "temperature: must be between 0 and 2"},
		{name: "JSON valid request but invalid role", codec: schema.JSON, body: []byte(`{"messages":[{"role":"function","content":"x"}]}`), wantErr: `messages[0].role: "function" is not one of`},
		{name: "JSON valid", codec: schema.JSON,
			body: []byte(`{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"a "},{"type":"text","text":"b"}],"name":"ann"}],` +
				`"max_tokens":12,"temperature":0.5,"top_p":1,"stop":"END","stream":true,"user":"u1","metadata":{"k":"v"},"unknown_field":[{"x":1}],"n_unknown":3}`),
			check: func(t *testing.T, r *schema.Request) {
				want := &schema.Request{
					Model: "m",
					Messages: []schema.Message{
						{Role: "system", Content: "be brief"},
						{Role: "user", Content: "a b", Name: "ann"},
					},
					MaxTokens: ptr(12), Temperature: ptr(0.5), TopP: ptr(1.0), Stop: schema.StopList{"END"},
					Stream: true, User: "u1", Metadata: map[string]string{"k": "v"},
				}
				if !reflect.DeepEqual(r, want) {
					t.Fatalf("decoded %+v, want %+v", r, want)
				}
			}},
		{name: "msgpack valid with integer temperature", codec: schema.MsgPack,
			body: mustMsgpack(t, map[string]any{
				"messages":              []any{map[string]any{"role": "user", "content": "hi"}, map[string]any{"role": "assistant", "content": nil}},
				"max_completion_tokens": int8(3), "temperature": 1, "stop": []string{"a", "b"}, "unknown": map[string]any{"x": 1},
			}),
			check: func(t *testing.T, r *schema.Request) {
				want := &schema.Request{
					Messages:            []schema.Message{{Role: "user", Content: "hi"}, {Role: "assistant"}},
					MaxCompletionTokens: ptr(3), Temperature: ptr(1.0), Stop: schema.StopList{"a", "b"},
				}
				if !reflect.DeepEqual(r, want) {
					t.Fatalf("decoded %+v, want %+v", r, want)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := schema.DecodeRequest(tt.codec, tt.body)
			if tt.wantErr != "" {
				if req != nil {
					t.Errorf("request = %+v, want nil on error", req)
				}
				wantBadRequest(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			tt.check(t, req)
		})
	}
}
