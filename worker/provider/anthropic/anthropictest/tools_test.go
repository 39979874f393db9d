package anthropictest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
)

// pngBytes is the start of a PNG file: enough for content sniffing.
var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

const pngB64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"

// body builds a request body around messages and extra top-level fields.
func body(messages string, extra ...string) string {
	b := `{"model":"m","max_tokens":50,"messages":` + messages
	for _, e := range extra {
		b += "," + e
	}
	return b + "}"
}

const weatherTool = `{"name":"get_weather","description":"d","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}`

// toolLoop is a valid conversation: a call and its result.
const toolLoop = `[{"role":"user","content":"weather?"},
	{"role":"assistant","content":[{"type":"text","text":"checking"},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
	{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"},{"type":"text","text":"and?"}]}]`

func TestRejectsBadToolUseAndImages(t *testing.T) {
	t.Parallel()
	s := anthropictest.NewServer(t, anthropictest.Config{})
	for name, tc := range map[string]struct{ body, message string }{
		"tool_result for an unknown id": {body(`[{"role":"user","content":"q"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"a"},{"type":"tool_result","tool_use_id":"toolu_9","content":"b"}]}]`,
			`"tools":[`+weatherTool+`]`),
			"messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."},
		"tool_result without a tool_use before": {body(`[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"a"}]}]`),
			"messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_1. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."},
		"tool_use not answered": {body(`[{"role":"user","content":"q"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]},
			{"role":"user","content":"never mind"}]`, `"tools":[`+weatherTool+`]`),
			"messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next message."},
		"tool_use input not an object": {body(`[{"role":"user","content":"q"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":"{}"}]}]`),
			"messages.1.content.0.tool_use.input: Input should be a valid dictionary"},
		"tool_use in a user message": {body(`[{"role":"user","content":[{"type":"tool_use","id":"toolu_1","name":"x","input":{}}]}]`), ""},
		"duplicate tool_use ids": {body(`[{"role":"user","content":"q"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"a","input":{}},{"type":"tool_use","id":"toolu_1","name":"a","input":{}}]}]`),
			"messages.1: `tool_use` ids must be unique, found duplicate: toolu_1"},
		"empty text block": {body(`[{"role":"user","content":[{"type":"text","text":""}]}]`), "messages: text content blocks must be non-empty"},
		"input_schema without type object": {body(`[{"role":"user","content":"q"}]`,
			`"tools":[{"name":"t","input_schema":{"type":"string"}}]`), "tools.0.custom.input_schema.type: Input should be 'object'"},
		"input_schema without type": {body(`[{"role":"user","content":"q"}]`,
			`"tools":[{"name":"t","input_schema":{"properties":{}}}]`), "tools.0.custom.input_schema.type: Field required"},
		"tool without input_schema": {body(`[{"role":"user","content":"q"}]`, `"tools":[{"name":"t"}]`),
			"tools.0.custom.input_schema: Field required"},
		"tool with a bad name": {body(`[{"role":"user","content":"q"}]`, `"tools":[{"name":"a b","input_schema":{"type":"object"}}]`),
			"tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"},
		"tool with an unknown field": {body(`[{"role":"user","content":"q"}]`, `"tools":[{"name":"t","parameters":{},"input_schema":{"type":"object"}}]`),
			"tools: parameters: Extra inputs are not permitted"},
		"duplicate tool names": {body(`[{"role":"user","content":"q"}]`, `"tools":[`+weatherTool+`,`+weatherTool+`]`),
			"tools: Tool names must be unique."},
		"unknown tool_choice type": {body(`[{"role":"user","content":"q"}]`, `"tools":[`+weatherTool+`]`, `"tool_choice":{"type":"required"}`),
			"tool_choice: Input tag 'required' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"},
		"tool_choice naming an undeclared tool": {body(`[{"role":"user","content":"q"}]`, `"tools":[`+weatherTool+`]`, `"tool_choice":{"type":"tool","name":"nope"}`),
			"tool_choice.tool.name: Tool 'nope' not found in provided tools"},
		"tool_choice tool without a name": {body(`[{"role":"user","content":"q"}]`, `"tools":[`+weatherTool+`]`, `"tool_choice":{"type":"tool"}`),
			"tool_choice.tool.name: Field required"},
		"tool_choice without tools": {body(`[{"role":"user","content":"q"}]`, `"tool_choice":{"type":"auto"}`),
			"tool_choice: tool_choice may only be specified while providing tools."},
		"none with disable_parallel_tool_use": {body(`[{"role":"user","content":"q"}]`, `"tools":[`+weatherTool+`]`,
			`"tool_choice":{"type":"none","disable_parallel_tool_use":true}`),
			"tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted"},
		"image media type": {body(`[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/bmp","data":"` + pngB64 + `"}}]}]`),
			"messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"},
		"image bytes of another type": {body(`[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"` + pngB64 + `"}}]}]`),
			"messages.0.content.0.image.source.base64: The image was specified using the image/jpeg media type, but the image appears to be a image/png image"},
		"image data not base64": {body(`[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"%%%"}}]}]`),
			"messages.0.content.0.image.source.base64.data: Invalid base64 data"},
		"image source type": {body(`[{"role":"user","content":[{"type":"image","source":{"type":"image_url","url":"https://x"}}]}]`),
			"messages.0.content.0.image.source: Input tag 'image_url' found using 'type' does not match any of the expected tags: 'base64', 'file', 'url'"},
		"image without source": {body(`[{"role":"user","content":[{"type":"image"}]}]`), "messages.0.content.0.image.source: Field required"},
		"image_url block":      {body(`[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]`), ""},
		"image URL that does not answer": {body(`[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"http://127.0.0.1:1/x.png"}}]}]`),
			"messages.0.content.0.image.source.url: Unable to download the file. Please verify the URL and try again."},
		"thinking budget under 1024": {body(`[{"role":"user","content":"q"}]`, `"thinking":{"type":"enabled","budget_tokens":100}`),
			"thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"},
		"thinking budget not under max_tokens": {strings.Replace(body(`[{"role":"user","content":"q"}]`, `"thinking":{"type":"enabled","budget_tokens":1024}`), `"max_tokens":50`, `"max_tokens":1024`, 1),
			"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"},
		"thinking with a temperature": {strings.Replace(body(`[{"role":"user","content":"q"}]`, `"temperature":0.5`, `"thinking":{"type":"enabled","budget_tokens":1024}`), `"max_tokens":50`, `"max_tokens":2000`, 1),
			"`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"},
		"thinking with forced tool use": {strings.Replace(body(`[{"role":"user","content":"q"}]`, `"tools":[`+weatherTool+`]`, `"tool_choice":{"type":"any"}`, `"thinking":{"type":"enabled","budget_tokens":1024}`), `"max_tokens":50`, `"max_tokens":2000`, 1),
			"Thinking may not be enabled when tool_choice forces tool use."},
		"thinking continuing a tool turn without its thinking block": {strings.Replace(body(toolLoop, `"tools":[`+weatherTool+`]`, `"thinking":{"type":"enabled","budget_tokens":1024}`), `"max_tokens":50`, `"max_tokens":2000`, 1),
			"messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			status, _, got := call(t, s, "POST", "/v1/messages", tc.body, nil)
			var e struct {
				Type  string `json:"type"`
				Error struct{ Type, Message string }
			}
			_ = json.Unmarshal([]byte(got), &e)
			if status != 400 || e.Type != "error" || e.Error.Type != "invalid_request_error" ||
				(tc.message != "" && e.Error.Message != tc.message) {
				t.Errorf("got %d %s", status, got)
			}
		})
	}
}

func TestAcceptsToolLoopsAndImages(t *testing.T) {
	t.Parallel()
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(pngBytes)
	}))
	t.Cleanup(img.Close)
	s := anthropictest.NewServer(t, anthropictest.Config{})
	for name, b := range map[string]string{
		"tool loop": body(toolLoop, `"tools":[`+weatherTool+`]`),
		"tool loop as separate user turns": body(`[{"role":"user","content":"weather?"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1"}]},{"role":"user","content":"and?"}]`, `"tools":[`+weatherTool+`]`),
		"final assistant tool_use": body(`[{"role":"user","content":"q"},
			{"role":"assistant","content":[{"type":"text","text":"let me see "},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]}]`, `"tools":[`+weatherTool+`]`),
		"every tool_choice": body(`[{"role":"user","content":"q"}]`, `"tools":[`+weatherTool+`]`, `"tool_choice":{"type":"tool","name":"get_weather","disable_parallel_tool_use":true}`),
		"tool_choice none":  body(`[{"role":"user","content":"q"}]`, `"tools":[`+weatherTool+`]`, `"tool_choice":{"type":"none"}`),
		"base64 image":      body(`[{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + pngB64 + `"}}]}]`),
		"image URL":         body(`[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"` + img.URL + `/a.png"}}]}]`),
		"thinking":          strings.Replace(body(`[{"role":"user","content":"q"}]`, `"thinking":{"type":"enabled","budget_tokens":1024}`), `"max_tokens":50`, `"max_tokens":2000`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if status, _, got := call(t, s, "POST", "/v1/messages", b, nil); status != 200 {
				t.Errorf("got %d %s", status, got)
			}
		})
	}
}

func TestScriptedToolUseStreams(t *testing.T) {
	t.Parallel()
	s := anthropictest.NewServer(t, anthropictest.Config{Respond: func(*anthropictest.Request) anthropictest.Answer {
		return anthropictest.Answer{ToolUses: []anthropictest.ToolUse{{ID: "toolu_a", Name: "get_weather", Input: `{"city":"Paris"}`}}}
	}})
	status, _, got := call(t, s, "POST", "/v1/messages", body(`[{"role":"user","content":"q"}]`, `"tools":[`+weatherTool+`]`, `"stream":true`), nil)
	want := strings.Join([]string{
		`event: content_block_start` + "\n" + `data: {"content_block":{"id":"toolu_a","input":{},"name":"get_weather","type":"tool_use"},"index":0,"type":"content_block_start"}`,
		`event: content_block_delta` + "\n" + `data: {"delta":{"partial_json":"{\"city","type":"input_json_delta"},"index":0,"type":"content_block_delta"}`,
		`event: content_block_delta` + "\n" + `data: {"delta":{"partial_json":"\":\"Par","type":"input_json_delta"},"index":0,"type":"content_block_delta"}`,
		`event: content_block_delta` + "\n" + `data: {"delta":{"partial_json":"is\"}","type":"input_json_delta"},"index":0,"type":"content_block_delta"}`,
		`event: content_block_stop` + "\n" + `data: {"index":0,"type":"content_block_stop"}`,
		`event: message_delta` + "\n" + `data: {"delta":{"stop_reason":"tool_use","stop_sequence":null},"type":"message_delta","usage":{"output_tokens":2}}`,
	}, "\n\n")
	if status != 200 || !strings.Contains(got, want) || strings.Contains(got, `"type":"text"`) {
		t.Errorf("stream %d\n%s\nwant within it\n%s", status, got, want)
	}
}

func TestScriptMistakesAre500s(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		uses   []anthropictest.ToolUse
		extra  []string
		reason string
	}{
		"undeclared tool": {[]anthropictest.ToolUse{{Name: "nope"}}, []string{`"tools":[` + weatherTool + `]`},
			`anthropictest: the test's Respond script: tool_use "nope" names no declared tool`},
		"input not an object": {[]anthropictest.ToolUse{{Name: "get_weather", Input: "[1]"}}, []string{`"tools":[` + weatherTool + `]`}, ""},
		"no call when one is forced": {nil, []string{`"tools":[` + weatherTool + `]`, `"tool_choice":{"type":"any"}`},
			`anthropictest: the test's Respond script: tool_choice "any" forces a tool use the script does not make`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := anthropictest.NewServer(t, anthropictest.Config{Respond: func(*anthropictest.Request) anthropictest.Answer {
				return anthropictest.Answer{Text: "x", ToolUses: tc.uses}
			}})
			status, _, got := call(t, s, "POST", "/v1/messages", body(`[{"role":"user","content":"q"}]`, tc.extra...), nil)
			var e struct {
				Error struct{ Type, Message string }
			}
			_ = json.Unmarshal([]byte(got), &e)
			if status != 500 || e.Error.Type != "api_error" || (tc.reason != "" && e.Error.Message != tc.reason) {
				t.Errorf("got %d %s", status, got)
			}
		})
	}
}
