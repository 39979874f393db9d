package anthropic_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/anthropic"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
)

// jsonScript answers by calling json_tool_call with input, as a model in
// JSON mode does.
func jsonScript(input string) func(*anthropictest.Request) anthropictest.Answer {
	return func(*anthropictest.Request) anthropictest.Answer {
		return anthropictest.Answer{ToolUses: []anthropictest.ToolUse{{Name: anthropic.JSONToolName, Input: input}}}
	}
}

var personFormat = &schema.ResponseFormat{Type: "json_schema", JSONSchema: &schema.JSONSchema{Name: "person",
	Description: "A person", Schema: schema.RawJSON(`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}}}`)}}

func TestProvider_JSONSchema_AnsweredAsContent(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Respond: jsonScript(`{"name":"Ada","age":36}`)})
	p := newProvider(t, fake, nil)
	req := &schema.Request{Messages: msgs("user", "who?"), ResponseFormat: personFormat}
	whole, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	body := sentBody(t, fake)
	wantTools := `[{"description":"A person","input_schema":{"properties":{"age":{"type":"integer"},"name":{"type":"string"}},"type":"object"},"name":"json_tool_call"}]`
	if got := jsonOf(t, body["tools"]); got != wantTools {
		t.Errorf("tools\n got %s\nwant %s", got, wantTools)
	}
	if got := jsonOf(t, body["tool_choice"]); got != `{"name":"json_tool_call","type":"tool"}` {
		t.Errorf("tool_choice %s", got)
	}
	c := whole.Choices[0]
	if c.Message.Text() != `{"age":36,"name":"Ada"}` || c.FinishReason != schema.FinishStop || c.Message.ToolCalls != nil {
		t.Errorf("choice %+v", c)
	}
	var got pieces
	streamed, err := p.Stream(context.Background(), req, got.emit)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if got.text.String() != `{"age":36,"name":"Ada"}` || got.calls != nil || got.n < 3 {
		t.Errorf("streamed pieces %q %+v (%d)", got.text.String(), got.calls, got.n)
	}
	whole.ID, streamed.ID = "", ""
	if !reflect.DeepEqual(whole, streamed) {
		t.Errorf("Stream returned\n%+v\nComplete\n%+v", streamed, whole)
	}
}

func TestProvider_JSONObject_AnyObjectTool(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Respond: jsonScript(`{"ok":true}`)})
	p := newProvider(t, fake, nil)
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "json please"),
		ResponseFormat: &schema.ResponseFormat{Type: "json_object"}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	body := sentBody(t, fake)
	if got := jsonOf(t, body["tools"]); got != `[{"input_schema":{"additionalProperties":true,"properties":{},"type":"object"},"name":"json_tool_call"}]` {
		t.Errorf("tools %s", got)
	}
	if resp.Text() != `{"ok":true}` || resp.Choices[0].FinishReason != "stop" {
		t.Errorf("response %q %s", resp.Text(), resp.Choices[0].FinishReason)
	}
}

func TestProvider_JSONText_SendsNoTool(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	if _, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "hi"),
		ResponseFormat: &schema.ResponseFormat{Type: "text"}}); err != nil {
		t.Fatal(err)
	}
	if body := sentBody(t, fake); body["tools"] != nil || body["tool_choice"] != nil {
		t.Errorf("sent %v", body)
	}
}

func TestProvider_JSONSchema_WithOwnToolsNotForced(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Respond: func(*anthropictest.Request) anthropictest.Answer {
		return anthropictest.Answer{ToolUses: []anthropictest.ToolUse{
			{ID: "toolu_w", Name: "get_weather", Input: `{"city":"Oslo"}`},
			{ID: "toolu_j", Name: anthropic.JSONToolName, Input: `{"name":"Ada"}`}}}
	}})
	p := newProvider(t, fake, nil)
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "q"),
		Tools: []schema.Tool{weather}, ResponseFormat: personFormat})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	body := sentBody(t, fake)
	if body["tool_choice"] != nil || len(body["tools"].([]any)) != 2 {
		t.Errorf("tools %s, tool_choice %v", jsonOf(t, body["tools"]), body["tool_choice"])
	}
	c := resp.Choices[0]
	if c.Message.Text() != `{"name":"Ada"}` || len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].ID != "toolu_w" ||
		c.FinishReason != schema.FinishToolCalls {
		t.Errorf("choice %+v", c)
	}
}

func TestProvider_JSONSchema_ToolNamedLikeTheJSONToolRefused(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	own := schema.Tool{Type: "function", Function: schema.Function{Name: anthropic.JSONToolName}}
	_, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "q"),
		Tools: []schema.Tool{own}, ResponseFormat: personFormat})
	if e := wantCode(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "json_tool_call") {
		t.Errorf("error %q", e.Message)
	}
}

// pngB64 is a 1x1 PNG's first bytes, enough for the fake's sniffing.
const pngB64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"

func imageMessage(url string) schema.Message {
	return schema.Message{Role: "user", Parts: []schema.ContentPart{
		{Type: "text", Text: "what is this?"},
		{Type: "image_url", ImageURL: &schema.ImageURL{URL: url, Detail: "high"}},
	}}
}

func TestProvider_Image_DataURIInline(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{imageMessage("data:image/png;base64," + pngB64)}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := `[{"content":[{"text":"what is this?","type":"text"},{"source":{"data":"` + pngB64 +
		`","media_type":"image/png","type":"base64"},"type":"image"}],"role":"user"}]`
	if got := jsonOf(t, sentBody(t, fake)["messages"]); got != want {
		t.Errorf("messages\n got %s\nwant %s", got, want)
	}
	if resp.Usage.PromptTokens != 3+anthropictest.ImageTokens { // the image counts in the prompt
		t.Errorf("prompt tokens %d", resp.Usage.PromptTokens)
	}
}

func TestProvider_Image_URLFetchedByTheAPI(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		fmt.Fprint(w, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	}))
	t.Cleanup(img.Close)
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	url := img.URL + "/cat.png?sig=secret"
	if _, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{imageMessage(url)}}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := `[{"content":[{"text":"what is this?","type":"text"},{"source":{"type":"url","url":"` + url + `"},"type":"image"}],"role":"user"}]`
	if got := jsonOf(t, sentBody(t, fake)["messages"]); got != want {
		t.Errorf("messages\n got %s\nwant %s", got, want)
	}
	if hits.Load() != 1 {
		t.Errorf("image fetched %d times, want once (by the API, not the adapter)", hits.Load())
	}
}

func TestProvider_Image_UnreachableURLIsTheAPIsBadRequest(t *testing.T) {
	t.Parallel()
	img := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(img.Close)
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	_, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{imageMessage(img.URL + "/gone.png")}})
	if e := wantCode(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "Unable to download the file") {
		t.Errorf("error %q", e.Message)
	}
}

func TestProvider_Image_MediaTypeRefused(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	_, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{imageMessage("data:image/bmp;base64,Qk0=")}})
	e := wantCode(t, err, schema.CodeBadRequest)
	if !strings.Contains(e.Message, "messages[0].content[1].image_url.url") || !strings.Contains(e.Message, "image/bmp") ||
		len(fake.Requests()) != 0 {
		t.Errorf("error %q", e.Message)
	}
}

func TestProvider_Unsupported_RefusedOrDropped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		param string
		set   func(*schema.Request)
	}{
		{"seed", func(r *schema.Request) { r.Seed = ptr(int64(7)) }},
		{"presence_penalty", func(r *schema.Request) { r.PresencePenalty = ptr(0.5) }},
		{"frequency_penalty", func(r *schema.Request) { r.FrequencyPenalty = ptr(-1.0) }},
		{"logprobs", func(r *schema.Request) { r.Logprobs = true }},
		{"top_logprobs", func(r *schema.Request) { r.TopLogprobs = ptr(2) }},
		{"n", func(r *schema.Request) { r.N = ptr(2) }},
	} {
		t.Run(tc.param, func(t *testing.T) {
			t.Parallel()
			fake := anthropictest.NewServer(t, anthropictest.Config{})
			req := &schema.Request{Messages: msgs("user", "hi")}
			tc.set(req)
			_, err := newProvider(t, fake, nil).Complete(context.Background(), req)
			e := wantCode(t, err, schema.CodeBadRequest)
			if !strings.Contains(e.Message, tc.param+" is not supported") || len(fake.Requests()) != 0 {
				t.Errorf("error %q", e.Message)
			}
			resp, err := newProvider(t, fake, func(o *provider.Options) { o.DropParams = true }).Complete(context.Background(), req)
			if err != nil || resp.Text() != "echo: hi" {
				t.Fatalf("with drop_params: %v", err)
			}
			jsonEqual(t, sentBody(t, fake), `{"model":"claude-test-4","max_tokens":4096,"messages":[{"role":"user","content":"hi"}]}`)
		})
	}
}

func TestProvider_Unsupported_NeutralValuesPass(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	_, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "hi"), N: ptr(1),
		PresencePenalty: ptr(0.0), FrequencyPenalty: ptr(0.0), StreamOptions: &schema.StreamOptions{IncludeUsage: true}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	jsonEqual(t, sentBody(t, fake), `{"model":"claude-test-4","max_tokens":4096,"messages":[{"role":"user","content":"hi"}]}`)
}

func TestProvider_ReasoningEffort_ThinkingBudgets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		effort    string
		limit     *int
		thinking  string
		maxTokens float64
	}{
		{"low", nil, `{"budget_tokens":1024,"type":"enabled"}`, 4096 + 1024},
		{"minimal", nil, `{"budget_tokens":1024,"type":"enabled"}`, 4096 + 1024},
		{"medium", nil, `{"budget_tokens":2048,"type":"enabled"}`, 4096 + 2048},
		{"high", ptr(10000), `{"budget_tokens":4096,"type":"enabled"}`, 10000},
		{"none", nil, ``, 4096},
	} {
		t.Run(tc.effort, func(t *testing.T) {
			t.Parallel()
			fake := anthropictest.NewServer(t, anthropictest.Config{})
			p := newProvider(t, fake, nil)
			if _, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "think"),
				ReasoningEffort: tc.effort, MaxTokens: tc.limit}); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			body := sentBody(t, fake)
			got, ok := body["thinking"]
			if (tc.thinking == "") == ok || (ok && jsonOf(t, got) != tc.thinking) || body["max_tokens"] != tc.maxTokens {
				t.Errorf("thinking %v, max_tokens %v", got, body["max_tokens"])
			}
		})
	}
}

func TestProvider_ReasoningEffort_JSONModeNotForced(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Respond: jsonScript(`{"name":"Ada"}`)})
	p := newProvider(t, fake, nil)
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "who?"),
		ResponseFormat: personFormat, ReasoningEffort: "low"})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if body := sentBody(t, fake); body["tool_choice"] != nil {
		t.Errorf("tool_choice %v forced with thinking on", body["tool_choice"])
	}
	if resp.Text() != `{"name":"Ada"}` {
		t.Errorf("content %q", resp.Text())
	}
}

func TestProvider_ReasoningEffort_ConflictsAreTheAPIsBadRequest(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		req  schema.Request
		want string
	}{
		"temperature": {schema.Request{Messages: msgs("user", "q"), Temperature: ptr(0.2)},
			"`temperature` may only be set to 1 when thinking is enabled"},
		"max_tokens under the budget": {schema.Request{Messages: msgs("user", "q"), MaxTokens: ptr(500)},
			"`max_tokens` must be greater than `thinking.budget_tokens`"},
		"forced tool": {schema.Request{Messages: msgs("user", "q"), Tools: []schema.Tool{weather},
			ToolChoice: &schema.ToolChoice{Mode: "required"}}, "Thinking may not be enabled when tool_choice forces tool use."},
		"continued tool turn": {schema.Request{Tools: []schema.Tool{weather}, Messages: []schema.Message{
			{Role: "user", Content: "q"},
			{Role: "assistant", ToolCalls: []schema.ToolCall{{ID: "call_1", Type: "function", Function: schema.FunctionCall{Name: "get_weather"}}}},
			{Role: "tool", ToolCallID: "call_1", Content: "sunny"}}}, "must start with a thinking block"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := anthropictest.NewServer(t, anthropictest.Config{})
			tc.req.ReasoningEffort = "low"
			_, err := newProvider(t, fake, nil).Complete(context.Background(), &tc.req)
			if e := wantCode(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, tc.want) {
				t.Errorf("error %q", e.Message)
			}
		})
	}
}

func TestProvider_Image_MalformedDataURIRefused(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	for _, u := range []string{"data:image/png,notbase64", "ftp://host/a.png"} {
		_, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{imageMessage(u)}})
		if e := wantCode(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "messages[0].content[1].image_url.url") {
			t.Errorf("%s: error %q", u, e.Message)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}
