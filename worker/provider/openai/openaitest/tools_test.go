package openaitest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// png1x1 is a 1x1 PNG, base64.
const png1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

const (
	weatherTool = `{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}`
	askCall     = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}`
)

// body builds a request body from its members.
func body(members ...string) string {
	return `{"model":"m",` + strings.Join(members, ",") + `}`
}

func TestFakeRejectsWhatOpenAIRejects_ToolsFormatsImagesSampling(t *testing.T) {
	t.Parallel()
	user := `{"role":"user","content":"weather?"}`
	msgs := func(m ...string) string { return `"messages":[` + strings.Join(m, ",") + `]` }
	tools := `"tools":[` + weatherTool + `]`
	notImage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hello, not an image")) }))
	t.Cleanup(notImage.Close)
	cases := []struct {
		name, body, code, param, inMessage string
	}{
		{"tool type not function", body(msgs(user), `"tools":[{"type":"retrieval","function":{"name":"x"}}]`), "invalid_value", "tools[0].type", "'retrieval'"},
		{"tool without function", body(msgs(user), `"tools":[{"type":"function"}]`), "missing_required_parameter", "tools[0].function", ""},
		{"tool without name", body(msgs(user), `"tools":[{"type":"function","function":{"description":"d"}}]`), "missing_required_parameter", "tools[0].function.name", ""},
		{"tool name with a space", body(msgs(user), `"tools":[{"type":"function","function":{"name":"get weather"}}]`), "invalid_value", "tools[0].function.name", "pattern"},
		{"tool parameters not an object schema", body(msgs(user), `"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"string"}}}]`), "invalid_function_parameters", "tools[0].function.parameters", "type: \"object\""},
		{"tool parameters an array", body(msgs(user), `"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]`), "invalid_function_parameters", "tools[0].function.parameters", ""},
		{"tool_choice without tools", body(msgs(user), `"tool_choice":"auto"`), "", "tool_choice", "only allowed when 'tools'"},
		{"tool_choice unknown mode", body(msgs(user), tools, `"tool_choice":"any"`), "invalid_value", "tool_choice", "'any'"},
		{"tool_choice names an undeclared function", body(msgs(user), tools, `"tool_choice":{"type":"function","function":{"name":"nope"}}`), "", "tool_choice", "'nope'"},
		{"parallel_tool_calls without tools", body(msgs(user), `"parallel_tool_calls":false`), "", "parallel_tool_calls", "only allowed when 'tools'"},
		{"tool message without a preceding call", body(msgs(user, `{"role":"tool","tool_call_id":"call_1","content":"sunny"}`)), "", "messages[1].role", "preceeding message with 'tool_calls'"},
		{"tool message answering another call", body(msgs(user, askCall, `{"role":"tool","tool_call_id":"call_9","content":"sunny"}`), tools), "", "messages[2].role", "preceeding message"},
		{"tool message without tool_call_id", body(msgs(user, askCall, `{"role":"tool","content":"sunny"}`), tools), "missing_required_parameter", "messages[2].tool_call_id", ""},
		{"call left unanswered", body(msgs(user, askCall, user), tools), "", "messages[1].role", "call_1"},
		{"assistant without content or tool_calls", body(msgs(user, `{"role":"assistant"}`)), "missing_required_parameter", "messages[1].content", ""},
		{"assistant with null content and no calls", body(msgs(user, `{"role":"assistant","content":null}`)), "invalid_type", "messages[1].content", ""},
		{"tool_call_id on a user message", body(msgs(`{"role":"user","content":"x","tool_call_id":"c"}`)), "", "messages[0].tool_call_id", "Unrecognized"},
		{"tool call without arguments", body(msgs(user, `{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f"}}]}`)), "missing_required_parameter", "messages[1].tool_calls[0].function.arguments", ""},
		{"json_schema without name", body(msgs(user), `"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object"}}}`), "missing_required_parameter", "response_format.json_schema.name", ""},
		{"json_schema without schema", body(msgs(user), `"response_format":{"type":"json_schema","json_schema":{"name":"w"}}`), "missing_required_parameter", "response_format.json_schema.schema", ""},
		{"json_object without the word json", body(msgs(user), `"response_format":{"type":"json_object"}`), "", "messages", "must contain the word 'json'"},
		{"response_format unknown type", body(msgs(user), `"response_format":{"type":"yaml"}`), "invalid_value", "response_format.type", "'yaml'"},
		{"image in a system message", body(msgs(`{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,`+png1x1+`"}}]}`, user)), "invalid_value", "messages[0].content[0].type", "'image_url'"},
		{"image in an assistant message", body(msgs(user, `{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,`+png1x1+`"}}]}`)), "invalid_value", "messages[1].content[0].type", ""},
		{"image without url", body(msgs(`{"role":"user","content":[{"type":"image_url","image_url":{}}]}`)), "missing_required_parameter", "messages[0].content[0].image_url.url", ""},
		{"image data URI not an image", body(msgs(`{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,aGVsbG8="}}]}`)), "invalid_image_format", "messages[0].content[0].image_url.url", "unsupported image"},
		{"image URL that is not an image", body(msgs(`{"role":"user","content":[{"type":"image_url","image_url":{"url":"` + notImage.URL + `/x.png"}}]}`)), "invalid_image_format", "messages[0].content[0].image_url.url", ""},
		{"image URL that cannot be fetched", body(msgs(`{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://127.0.0.1:1/x.png"}}]}`)), "invalid_image_url", "messages[0].content[0].image_url.url", "Error while downloading"},
		{"image detail unknown", body(msgs(`{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + png1x1 + `","detail":"max"}}]}`)), "invalid_value", "messages[0].content[0].image_url.detail", ""},
		{"top_logprobs without logprobs", body(msgs(user), `"top_logprobs":2`), "", "top_logprobs", "'logprobs' must be set to true"},
		{"top_logprobs above 20", body(msgs(user), `"logprobs":true,"top_logprobs":21`), "integer_above_max_value", "top_logprobs", ""},
		{"n zero", body(msgs(user), `"n":0`), "integer_below_min_value", "n", ""},
		{"n above 128", body(msgs(user), `"n":129`), "integer_above_max_value", "n", ""},
		{"presence_penalty above 2", body(msgs(user), `"presence_penalty":2.5`), "invalid_value", "presence_penalty", ""},
		{"frequency_penalty below -2", body(msgs(user), `"frequency_penalty":-3`), "invalid_value", "frequency_penalty", ""},
		{"seed a decimal", body(msgs(user), `"seed":1.5`), "invalid_type", "seed", ""},
		{"reasoning_effort unknown", body(msgs(user), `"reasoning_effort":"extreme"`), "invalid_value", "reasoning_effort", "'extreme'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t, openaitest.Config{Key: key})
			status, _, b := post(t, srv, "POST", "/v1/chat/completions", "application/json", "Bearer "+key, c.body)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400: %s", status, b)
			}
			var e errorBody
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" || e.Error.Type != "invalid_request_error" {
				t.Fatalf("body %s is not an OpenAI invalid_request_error: %v", b, err)
			}
			if got := deref(e.Error.Code); got != c.code {
				t.Errorf("code = %q, want %q (%s)", got, c.code, e.Error.Message)
			}
			if got := deref(e.Error.Param); got != c.param {
				t.Errorf("param = %q, want %q", got, c.param)
			}
			if !strings.Contains(e.Error.Message, c.inMessage) {
				t.Errorf("message %q lacks %q", e.Error.Message, c.inMessage)
			}
		})
	}
}

func TestFakeAcceptsTheWholeToolLoopWithImagesAndFormats(t *testing.T) {
	t.Parallel()
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(pngBytes(t))
	}))
	t.Cleanup(img.Close)
	srv := openaitest.NewServer(t, openaitest.Config{Key: key, Answers: []openaitest.Answer{{Content: `{"ok":true}`}}})
	status, _, b := post(t, srv, "POST", "/v1/chat/completions", "application/json", "Bearer "+key, body(
		`"messages":[{"role":"user","content":[{"type":"text","text":"weather? answer in json"},`+
			`{"type":"image_url","image_url":{"url":"data:image/png;base64,`+png1x1+`","detail":"low"}},`+
			`{"type":"image_url","image_url":{"url":"`+img.URL+`/cat.png"}}]},`+askCall+
			`,{"role":"tool","tool_call_id":"call_1","content":"sunny"}]`,
		`"tools":[`+weatherTool+`]`, `"tool_choice":"auto"`, `"parallel_tool_calls":true`,
		`"response_format":{"type":"json_object"}`, `"seed":7`, `"presence_penalty":0.5`, `"frequency_penalty":-0.5`,
		`"logprobs":true`, `"top_logprobs":2`, `"n":2`, `"reasoning_effort":"low"`))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, b)
	}
	var c struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			Logprobs struct {
				Content []struct {
					Top []any `json:"top_logprobs"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &c); err != nil || len(c.Choices) != 2 || c.Choices[0].Message.Content != `{"ok":true}` ||
		len(c.Choices[0].Logprobs.Content) != 1 || len(c.Choices[0].Logprobs.Content[0].Top) != 2 {
		t.Errorf("completion %s (%v)", b, err)
	}
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b []byte
	if err := json.Unmarshal([]byte(`"`+png1x1+`"`), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFakeStreamsToolCallsAsFragments(t *testing.T) {
	t.Parallel()
	args := `{"city":"Paris","unit":"celsius"}`
	srv := openaitest.NewServer(t, openaitest.Config{Answers: []openaitest.Answer{{ToolCalls: []openaitest.ToolCall{
		{ID: "call_a", Name: "get_weather", Arguments: args}}}}})
	_, _, b := post(t, srv, "POST", "/v1/chat/completions", "application/json", "",
		body(`"messages":[{"role":"user","content":"x"}]`, `"tools":[`+weatherTool+`]`, `"stream":true`))
	type piece struct {
		Index    int     `json:"index"`
		ID       *string `json:"id"`
		Function struct {
			Name      *string `json:"name"`
			Arguments string  `json:"arguments"`
		} `json:"function"`
	}
	var pieces []piece
	var finish string
	for _, ev := range strings.Split(strings.TrimSpace(string(b)), "\n\n") {
		data := strings.TrimPrefix(ev, "data: ")
		if data == "[DONE]" {
			break
		}
		var c struct {
			Choices []struct {
				Delta struct {
					ToolCalls []piece `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		for _, ch := range c.Choices {
			pieces = append(pieces, ch.Delta.ToolCalls...)
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if len(pieces) < 3 || pieces[0].ID == nil || *pieces[0].ID != "call_a" || pieces[0].Function.Name == nil || pieces[0].Function.Arguments != "" {
		t.Fatalf("pieces %+v: want id and name first, then argument fragments", pieces)
	}
	var joined strings.Builder
	for _, p := range pieces[1:] {
		if p.ID != nil || p.Function.Name != nil || p.Index != 0 {
			t.Errorf("later piece %+v carries more than arguments", p)
		}
		joined.WriteString(p.Function.Arguments)
	}
	if joined.String() != args || finish != "tool_calls" {
		t.Errorf("arguments %q, finish %q", joined.String(), finish)
	}
}

func TestFakeRespond_AnswersEachRequestFromItsOwnMessages(t *testing.T) {
	t.Parallel()
	var seen []*openaitest.Request
	srv := openaitest.NewServer(t, openaitest.Config{Respond: func(r *openaitest.Request) openaitest.Answer {
		seen = append(seen, r) // the requests below are sequential
		last := r.Messages[len(r.Messages)-1]
		if last.Role == "tool" {
			return openaitest.Answer{Content: "it is " + last.Content}
		}
		// An undeclared function: the fake, strict, does not call it.
		return openaitest.Answer{ToolCalls: []openaitest.ToolCall{{Name: "get_weather", Arguments: `{"city":"Paris"}`}, {Name: "nope"}}}
	}})
	tools := `"tools":[` + weatherTool + `]`
	// The tool result first, then the question: order does not matter.
	status, _, b := post(t, srv, "POST", "/v1/chat/completions", "application/json", "",
		body(`"messages":[{"role":"user","content":"weather?"},`+askCall+`,{"role":"tool","tool_call_id":"call_1","content":"sunny"}]`, tools))
	if status != http.StatusOK || !strings.Contains(string(b), `"content":"it is sunny"`) || !strings.Contains(string(b), `"finish_reason":"stop"`) {
		t.Errorf("answer to the tool result: %d %s", status, b)
	}
	status, _, b = post(t, srv, "POST", "/v1/chat/completions", "application/json", "",
		body(`"messages":[{"role":"user","content":"weather?"}]`, tools, `"response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"}}}`))
	var c struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct {
					Function struct{ Name, Arguments string } `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &c); status != http.StatusOK || err != nil || len(c.Choices) != 1 || c.Choices[0].FinishReason != "tool_calls" ||
		len(c.Choices[0].Message.ToolCalls) != 1 || c.Choices[0].Message.ToolCalls[0].Function.Name != "get_weather" {
		t.Errorf("answer to the question: %d %s", status, b)
	}
	// An invalid request never reaches the script.
	status, _, _ = post(t, srv, "POST", "/v1/chat/completions", "application/json", "", body(`"messages":[]`))
	if status != http.StatusBadRequest {
		t.Errorf("empty messages: status %d", status)
	}
	if len(seen) != 2 || seen[0].Messages[1].ToolCalls[0].ID != "call_1" || seen[0].Messages[2].ToolCallID != "call_1" ||
		seen[1].ResponseFormat != "json_schema" || strings.Join(seen[1].Tools, ",") != "get_weather" {
		t.Errorf("the script saw %+v", seen)
	}
}
