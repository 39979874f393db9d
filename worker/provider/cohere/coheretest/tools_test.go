package coheretest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmq/llmq/worker/provider/cohere/coheretest"
)

const png1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

const (
	weatherTool = `{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}`
	askCall     = `{"role":"assistant","tool_calls":[{"id":"get_weather_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}`
	userMsg     = `{"role":"user","content":"weather?"}`
)

func chatBody(messages string, extra ...string) string {
	b := `{"model":"command-r","messages":[` + messages + `]`
	for _, e := range extra {
		b += "," + e
	}
	return b + "}"
}

func TestFakeRejectsWhatCohereRejects_ToolsFormatsImages(t *testing.T) {
	t.Parallel()
	tools := `"tools":[` + weatherTool + `]`
	notImage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("not an image")) }))
	t.Cleanup(notImage.Close)
	image := func(role, url string) string {
		return `{"role":"` + role + `","content":[{"type":"text","text":"what?"},{"type":"image_url","image_url":{"url":"` + url + `"}}]}`
	}
	cases := []struct{ name, body, inMessage string }{
		{"tool type not function", chatBody(userMsg, `"tools":[{"type":"retrieval","function":{"name":"x","parameters":{"type":"object"}}}]`), "tools[0].type"},
		{"tool without parameters", chatBody(userMsg, `"tools":[{"type":"function","function":{"name":"x"}}]`), "tools[0].function.parameters is required"},
		{"tool parameters not an object schema", chatBody(userMsg, `"tools":[{"type":"function","function":{"name":"x","parameters":{"type":"string"}}}]`), "tools[0].function.parameters"},
		{"OpenAI's strict on a tool", chatBody(userMsg, `"tools":[{"type":"function","function":{"name":"x","parameters":{"type":"object"},"strict":true}}]`), "strict is not a valid field"},
		{"tool name with a space", chatBody(userMsg, `"tools":[{"type":"function","function":{"name":"get weather","parameters":{"type":"object"}}}]`), "tools[0].function.name"},
		{"OpenAI's lower-case tool_choice", chatBody(userMsg, tools, `"tool_choice":"required"`), "tool_choice must be one of REQUIRED, NONE"},
		{"tool_choice AUTO", chatBody(userMsg, tools, `"tool_choice":"AUTO"`), "tool_choice must be one of"},
		{"tool_choice without tools", chatBody(userMsg, `"tool_choice":"REQUIRED"`), "only be used with tools"},
		{"OpenAI's parallel_tool_calls", chatBody(userMsg, tools, `"parallel_tool_calls":false`), "parallel_tool_calls"},
		{"tool message without a call", chatBody(userMsg + `,{"role":"tool","tool_call_id":"x","content":"sunny"}`), "does not match a tool call"},
		{"tool message answering another call", chatBody(userMsg+","+askCall+`,{"role":"tool","tool_call_id":"other","content":"sunny"}`, tools), "does not match a tool call"},
		{"tool message without tool_call_id", chatBody(userMsg+","+askCall+`,{"role":"tool","content":"sunny"}`, tools), "tool_call_id is required"},
		{"tool message without content", chatBody(userMsg+","+askCall+`,{"role":"tool","tool_call_id":"get_weather_1"}`, tools), "content is required"},
		{"assistant without content or calls", chatBody(userMsg + `,{"role":"assistant"}`), "content is required"},
		{"tool call without arguments", chatBody(userMsg + `,{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f"}}]}`), "tool_calls[0]"},
		{"tool_call_id on a user message", chatBody(`{"role":"user","content":"x","tool_call_id":"c"}`), "tool_call_id is not a valid field"},
		{"OpenAI's json_schema type", chatBody(userMsg, `"response_format":{"type":"json_schema","json_schema":{"type":"object"}}`), "response_format.type"},
		{"OpenAI's json_schema wrapper", chatBody(userMsg, `"response_format":{"type":"json_object","json_schema":{"name":"w","schema":{"type":"object"}}}`), "response_format.json_schema"},
		{"json_schema with text", chatBody(userMsg, `"response_format":{"type":"text","json_schema":{"type":"object"}}`), "only valid with type json_object"},
		{"frequency_penalty above 1", chatBody(userMsg, `"frequency_penalty":1.5`), "frequency_penalty"},
		{"presence_penalty negative", chatBody(userMsg, `"presence_penalty":-0.5`), "presence_penalty"},
		{"seed a decimal", chatBody(userMsg, `"seed":1.5`), "seed"},
		{"OpenAI's n", chatBody(userMsg, `"n":2`), "parameter n"},
		{"OpenAI's top_logprobs", chatBody(userMsg, `"logprobs":true,"top_logprobs":2`), "top_logprobs"},
		{"image in a system message", chatBody(image("system", "data:image/png;base64,"+png1x1) + "," + userMsg), "not valid in a system message"},
		{"image data URL not an image", chatBody(image("user", "data:image/png;base64,aGVsbG8=")), "unsupported image format"},
		{"image URL that is not an image", chatBody(image("user", notImage.URL+"/x.png")), "unsupported image format"},
		{"image URL that cannot be fetched", chatBody(image("user", "http://127.0.0.1:1/x.png")), "could not download"},
		{"image of another scheme", chatBody(image("user", "ftp://host/x.png")), "data URL or an http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := coheretest.NewServer(t, coheretest.Config{Key: key})
			status, b := post(t, srv, "POST", "/v2/chat", "application/json", "Bearer "+key, c.body)
			var e struct {
				ID      string `json:"id"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(b, &e); status != http.StatusBadRequest || err != nil || e.ID == "" {
				t.Fatalf("status %d, body %s: want a 400 {id, message}", status, b)
			}
			if !strings.HasPrefix(e.Message, "invalid request: ") || !strings.Contains(e.Message, c.inMessage) {
				t.Errorf("message %q lacks %q", e.Message, c.inMessage)
			}
		})
	}
}

func TestFakeStreamsToolCallsAsCohereDoes(t *testing.T) {
	t.Parallel()
	args := `{"city":"Paris","unit":"celsius"}`
	srv := coheretest.NewServer(t, coheretest.Config{Answers: []coheretest.Answer{{ToolPlan: "I will look it up.",
		ToolCalls: []coheretest.ToolCall{{ID: "get_weather_a", Name: "get_weather", Arguments: args}}}}})
	_, b := post(t, srv, "POST", "/v2/chat", "application/json", "Bearer "+key,
		chatBody(userMsg, `"tools":[`+weatherTool+`]`, `"stream":true`))
	var types []string
	var joined strings.Builder
	for _, ev := range strings.Split(strings.TrimSpace(string(b)), "\n\n") {
		_, data, _ := strings.Cut(ev, "data: ")
		var e struct {
			Type  string `json:"type"`
			Index int    `json:"index"`
			Delta struct {
				FinishReason string `json:"finish_reason"`
				Message      struct {
					ToolCalls struct {
						ID       string `json:"id"`
						Function struct {
							Name      string `json:"name"`
							Arguments string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"message"`
			} `json:"delta"`
		}
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			continue // message-start's tool_calls is an array
		}
		types = append(types, e.Type)
		switch e.Type {
		case "tool-call-start":
			if e.Delta.Message.ToolCalls.ID != "get_weather_a" || e.Delta.Message.ToolCalls.Function.Name != "get_weather" {
				t.Errorf("tool-call-start %s", data)
			}
		case "tool-call-delta":
			joined.WriteString(e.Delta.Message.ToolCalls.Function.Arguments)
		case "message-end":
			if e.Delta.FinishReason != "TOOL_CALL" {
				t.Errorf("message-end %s", data)
			}
		}
	}
	if joined.String() != args || !strings.Contains(strings.Join(types, ","), "tool-plan-delta") ||
		!strings.HasSuffix(strings.Join(types, ","), "tool-call-end,message-end") {
		t.Errorf("events %v, arguments %q", types, joined.String())
	}
}

func TestFakeRespond_AnswersEachRequestFromItsOwnMessages(t *testing.T) {
	t.Parallel()
	var seen []*coheretest.Request
	srv := coheretest.NewServer(t, coheretest.Config{Respond: func(r *coheretest.Request) coheretest.Answer {
		seen = append(seen, r) // the requests below are sequential
		last := r.Messages[len(r.Messages)-1]
		if last.Role == "tool" {
			return coheretest.Answer{Content: "it is " + last.Content}
		}
		// An undeclared function: the fake, strict, does not call it.
		return coheretest.Answer{ToolCalls: []coheretest.ToolCall{{Name: "get_weather", Arguments: `{"city":"Paris"}`}, {Name: "nope"}}}
	}})
	tools := `"tools":[` + weatherTool + `]`
	status, b := post(t, srv, "POST", "/v2/chat", "application/json", "Bearer "+key,
		chatBody(userMsg+","+askCall+`,{"role":"tool","tool_call_id":"get_weather_1","content":"sunny"}`, tools))
	if status != http.StatusOK || !strings.Contains(string(b), `"text":"it is sunny"`) || !strings.Contains(string(b), `"finish_reason":"COMPLETE"`) {
		t.Errorf("answer to the tool result: %d %s", status, b)
	}
	status, b = post(t, srv, "POST", "/v2/chat", "application/json", "Bearer "+key,
		chatBody(userMsg, tools, `"response_format":{"type":"json_object","json_schema":{"type":"object"}}`))
	var c struct {
		Message struct {
			ToolCalls []struct {
				Function struct{ Name, Arguments string } `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	}
	if err := json.Unmarshal(b, &c); status != http.StatusOK || err != nil || c.FinishReason != "TOOL_CALL" ||
		len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].Function.Name != "get_weather" {
		t.Errorf("answer to the question: %d %s", status, b)
	}
	// An invalid request never reaches the script.
	if status, _ := post(t, srv, "POST", "/v2/chat", "application/json", "Bearer "+key, chatBody("")); status != http.StatusBadRequest {
		t.Errorf("empty messages: status %d", status)
	}
	if len(seen) != 2 || seen[0].Messages[1].ToolCalls[0].ID != "get_weather_1" || seen[0].Messages[2].ToolCallID != "get_weather_1" ||
		seen[1].ResponseFormat != "json_object" || !seen[1].JSONSchema || strings.Join(seen[1].Tools, ",") != "get_weather" {
		t.Errorf("the script saw %+v", seen)
	}
}
