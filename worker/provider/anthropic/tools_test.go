package anthropic_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
)

var weather = schema.Tool{Type: "function", Function: schema.Function{Name: "get_weather", Description: "Weather of a city",
	Parameters: schema.RawJSON(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}

var clock = schema.Tool{Type: "function", Function: schema.Function{Name: "get_time"}}

// pieces reassembles emitted pieces as an OpenAI client does: text
// appended, tool-call pieces merged by index.
type pieces struct {
	text  strings.Builder
	calls []schema.ToolCall
	n     int
}

func (p *pieces) emit(c schema.ChunkChoice) error {
	p.n++
	p.text.WriteString(c.Delta.Content)
	for _, d := range c.Delta.ToolCalls {
		if d.ID != "" {
			if d.Index != len(p.calls) {
				return &schema.Error{Code: schema.CodeInternal, Message: "tool call pieces out of order"}
			}
			p.calls = append(p.calls, schema.ToolCall{ID: d.ID, Type: d.Type, Function: schema.FunctionCall{Name: d.Function.Name}})
		}
		if d.Index >= len(p.calls) {
			return &schema.Error{Code: schema.CodeInternal, Message: "argument piece before its call"}
		}
		p.calls[d.Index].Function.Arguments += d.Function.Arguments
	}
	return nil
}

// weatherScript answers with a call of get_weather per city asked, and
// with the weather once the results are there.
func weatherScript(cities ...string) func(*anthropictest.Request) anthropictest.Answer {
	return func(r *anthropictest.Request) anthropictest.Answer {
		last := r.Messages[len(r.Messages)-1]
		var results []string
		for _, b := range last.Content.Items {
			if b.Type == "tool_result" {
				results = append(results, b.ResultText())
			}
		}
		if len(results) > 0 {
			return anthropictest.Answer{Text: "It is " + strings.Join(results, " and ")}
		}
		a := anthropictest.Answer{Text: "Let me look."}
		for _, c := range cities {
			a.ToolUses = append(a.ToolUses, anthropictest.ToolUse{Name: "get_weather", Input: `{"city":"` + c + `"}`})
		}
		return a
	}
}

// sent returns the JSON body of request i of fake.
func sent(t *testing.T, fake *anthropictest.Server, i int) map[string]any {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) <= i {
		t.Fatalf("fake got %d requests, want more than %d", len(reqs), i)
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[i].Raw, &body); err != nil {
		t.Fatal(err)
	}
	return body
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProvider_Tools_DeclarationsMapped(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	noType := schema.Tool{Type: "function", Function: schema.Function{Name: "lookup", Strict: ptr(true), // strict is not sent
		Parameters: schema.RawJSON(` {"properties":{"q":{"type":"string"}}}`)}}
	if _, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "hi"),
		Tools: []schema.Tool{weather, clock, noType}}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	body := sentBody(t, fake)
	want := `[{"description":"Weather of a city","input_schema":{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"},"name":"get_weather"},` +
		`{"input_schema":{"properties":{},"type":"object"},"name":"get_time"},` +
		`{"input_schema":{"properties":{"q":{"type":"string"}},"type":"object"},"name":"lookup"}]`
	if got := jsonOf(t, body["tools"]); got != want {
		t.Errorf("tools\n got %s\nwant %s", got, want)
	}
	if _, ok := body["tool_choice"]; ok {
		t.Errorf("tool_choice sent without being asked: %v", body["tool_choice"])
	}
}

func TestProvider_Tools_ParametersOfAnotherTypeRefused(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	bad := schema.Tool{Type: "function", Function: schema.Function{Name: "x", Parameters: schema.RawJSON(`{"type":"array"}`)}}
	_, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "hi"), Tools: []schema.Tool{clock, bad}})
	e := wantCode(t, err, schema.CodeBadRequest)
	if !strings.Contains(e.Message, "tools[1].function.parameters") || len(fake.Requests()) != 0 {
		t.Errorf("error %q, %d requests sent", e.Message, len(fake.Requests()))
	}
}

func TestProvider_ToolChoice_EachMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		choice   *schema.ToolChoice
		parallel *bool
		want     string // the tool_choice sent, "" for none
		calls    int    // calls answered to a script of two
	}{
		{name: "unset", want: "", calls: 2},
		{name: "auto", choice: &schema.ToolChoice{Mode: "auto"}, want: `{"type":"auto"}`, calls: 2},
		{name: "none", choice: &schema.ToolChoice{Mode: "none"}, want: `{"type":"none"}`, calls: 0},
		{name: "required", choice: &schema.ToolChoice{Mode: "required"}, want: `{"type":"any"}`, calls: 2},
		{name: "named function", choice: &schema.ToolChoice{Mode: "function", Function: "get_weather"},
			want: `{"name":"get_weather","type":"tool"}`, calls: 2},
		{name: "parallel_tool_calls false", parallel: ptr(false), want: `{"disable_parallel_tool_use":true,"type":"auto"}`, calls: 1},
		{name: "required and parallel_tool_calls false", choice: &schema.ToolChoice{Mode: "required"}, parallel: ptr(false),
			want: `{"disable_parallel_tool_use":true,"type":"any"}`, calls: 1},
		{name: "none and parallel_tool_calls false", choice: &schema.ToolChoice{Mode: "none"}, parallel: ptr(false),
			want: `{"type":"none"}`, calls: 0},
		{name: "parallel_tool_calls true", parallel: ptr(true), want: "", calls: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := anthropictest.NewServer(t, anthropictest.Config{Respond: weatherScript("Paris", "Oslo")})
			p := newProvider(t, fake, nil)
			resp, err := p.Complete(context.Background(), &schema.Request{Messages: msgs("user", "weather?"),
				Tools: []schema.Tool{weather, clock}, ToolChoice: tc.choice, ParallelToolCalls: tc.parallel})
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			got, ok := sentBody(t, fake)["tool_choice"]
			if (tc.want == "") == ok || (ok && jsonOf(t, got) != tc.want) {
				t.Errorf("tool_choice sent %v, want %s", got, tc.want)
			}
			finish := schema.FinishToolCalls
			if tc.calls == 0 {
				finish = schema.FinishStop
			}
			if n := len(resp.Choices[0].Message.ToolCalls); n != tc.calls || resp.Choices[0].FinishReason != finish {
				t.Errorf("%d calls, finish %s; want %d, %s", n, resp.Choices[0].FinishReason, tc.calls, finish)
			}
		})
	}
}

// toolLoop runs a conversation of one call per city: the model asks, the
// results go back, the model answers. call is Complete or Stream.
func toolLoop(t *testing.T, call func(*schema.Request) (*schema.Response, error), fake *anthropictest.Server, cities ...string) *schema.Response {
	t.Helper()
	req := &schema.Request{Messages: msgs("system", "be brief", "user", "weather?"), Tools: []schema.Tool{weather}}
	first, err := call(req)
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	c := first.Choices[0]
	if c.FinishReason != schema.FinishToolCalls || len(c.Message.ToolCalls) != len(cities) || c.Message.Text() != "Let me look." {
		t.Fatalf("first answer %+v", c)
	}
	req.Messages = append(req.Messages, c.Message)
	for i, tc := range c.Message.ToolCalls {
		if want := `{"city":"` + cities[i] + `"}`; tc.Function.Arguments != want || tc.Function.Name != "get_weather" ||
			tc.Type != "function" || !strings.HasPrefix(tc.ID, "toolu_") {
			t.Errorf("call %d = %+v, want arguments %s", i, tc, want)
		}
		req.Messages = append(req.Messages, schema.Message{Role: "tool", ToolCallID: tc.ID, Content: schema.Content("sunny in " + cities[i])})
	}
	req.Messages = append(req.Messages, schema.Message{Role: "user", Content: "thanks"})
	second, err := call(req)
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	if got, want := second.Text(), "It is sunny in "+strings.Join(cities, " and sunny in "); got != want ||
		second.Choices[0].FinishReason != schema.FinishStop || len(second.Choices[0].Message.ToolCalls) != 0 {
		t.Errorf("second answer %q (%s), want %q", got, second.Choices[0].FinishReason, want)
	}
	// The assistant turn carries its text and calls as blocks; the tool
	// results and the user message after them are one user turn.
	body := sent(t, fake, 1)
	msgs := body["messages"].([]any)
	if len(msgs) != 3 {
		t.Fatalf("sent %d messages: %s", len(msgs), jsonOf(t, msgs))
	}
	wantAssistant := `{"content":[{"text":"Let me look.","type":"text"}`
	wantUser := `{"content":[`
	for i, tc := range c.Message.ToolCalls {
		wantAssistant += `,{"id":"` + tc.ID + `","input":{"city":"` + cities[i] + `"},"name":"get_weather","type":"tool_use"}`
		wantUser += `{"content":"sunny in ` + cities[i] + `","tool_use_id":"` + tc.ID + `","type":"tool_result"},`
	}
	wantAssistant += `],"role":"assistant"}`
	wantUser += `{"text":"thanks","type":"text"}],"role":"user"}`
	if got := jsonOf(t, msgs[1]); got != wantAssistant {
		t.Errorf("assistant turn\n got %s\nwant %s", got, wantAssistant)
	}
	if got := jsonOf(t, msgs[2]); got != wantUser {
		t.Errorf("user turn\n got %s\nwant %s", got, wantUser)
	}
	return first
}

func TestProvider_ToolLoop_Complete(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Respond: weatherScript("Paris")})
	p := newProvider(t, fake, nil)
	toolLoop(t, func(r *schema.Request) (*schema.Response, error) { return p.Complete(context.Background(), r) }, fake, "Paris")
}

func TestProvider_ToolLoop_Stream(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Respond: weatherScript("Paris")})
	p := newProvider(t, fake, nil)
	toolLoop(t, func(r *schema.Request) (*schema.Response, error) {
		var got pieces
		resp, err := p.Stream(context.Background(), r, got.emit)
		if err == nil && (got.text.String() != resp.Text() || !reflect.DeepEqual(got.calls, resp.Choices[0].Message.ToolCalls)) {
			t.Errorf("pieces (%q, %+v) do not add up to the response (%q, %+v)", got.text.String(), got.calls, resp.Text(), resp.Choices[0].Message.ToolCalls)
		}
		return resp, err
	}, fake, "Paris")
}

func TestProvider_Tools_ParallelCallsStreamedReassembleToTheCompleteReply(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Respond: func(*anthropictest.Request) anthropictest.Answer {
		return anthropictest.Answer{Text: "Two lookups.", ToolUses: []anthropictest.ToolUse{
			{ID: "toolu_01", Name: "get_weather", Input: `{"city":"Zürich, \"CH\""}`},
			{ID: "toolu_02", Name: "get_time"},
			{ID: "toolu_03", Name: "get_weather", Input: `{"city":"Oslo"}`},
		}}
	}})
	p := newProvider(t, fake, nil)
	req := &schema.Request{Messages: msgs("user", "weather and time?"), Tools: []schema.Tool{weather, clock}}
	whole, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	var got pieces
	streamed, err := p.Stream(context.Background(), req, got.emit)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	want := []schema.ToolCall{
		{ID: "toolu_01", Type: "function", Function: schema.FunctionCall{Name: "get_weather", Arguments: `{"city":"Zürich, \"CH\""}`}},
		{ID: "toolu_02", Type: "function", Function: schema.FunctionCall{Name: "get_time", Arguments: `{}`}},
		{ID: "toolu_03", Type: "function", Function: schema.FunctionCall{Name: "get_weather", Arguments: `{"city":"Oslo"}`}},
	}
	if !reflect.DeepEqual(whole.Choices[0].Message.ToolCalls, want) {
		t.Errorf("Complete calls %+v", whole.Choices[0].Message.ToolCalls)
	}
	if !reflect.DeepEqual(got.calls, want) || got.text.String() != "Two lookups." {
		t.Errorf("streamed pieces reassemble to %q %+v", got.text.String(), got.calls)
	}
	whole.ID, streamed.ID = "", ""
	if !reflect.DeepEqual(whole, streamed) {
		t.Errorf("Stream returned\n%+v\nComplete\n%+v", streamed, whole)
	}
	if got.n < 8 { // text pieces, three first pieces, several fragments
		t.Errorf("only %d pieces: the arguments were not streamed in fragments", got.n)
	}
}

func TestProvider_Tools_ArgumentsNotAnObjectRefused(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	for _, args := range []string{`[1]`, `"x"`, `{"a":`} {
		_, err := p.Complete(context.Background(), &schema.Request{Tools: []schema.Tool{weather}, Messages: []schema.Message{
			{Role: "user", Content: "q"},
			{Role: "assistant", ToolCalls: []schema.ToolCall{
				{ID: "call_1", Type: "function", Function: schema.FunctionCall{Name: "get_weather", Arguments: `{}`}},
				{ID: "call_2", Type: "function", Function: schema.FunctionCall{Name: "get_weather", Arguments: args}}}},
			{Role: "tool", ToolCallID: "call_1", Content: "a"},
			{Role: "tool", ToolCallID: "call_2", Content: "b"},
		}})
		e := wantCode(t, err, schema.CodeBadRequest)
		if !strings.Contains(e.Message, "messages[1].tool_calls[1].function.arguments") {
			t.Errorf("arguments %s: error %q", args, e.Message)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestProvider_Tools_UnansweredCallIsTheAPIsBadRequest(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	_, err := p.Complete(context.Background(), &schema.Request{Tools: []schema.Tool{weather}, Messages: []schema.Message{
		{Role: "user", Content: "q"},
		{Role: "assistant", ToolCalls: []schema.ToolCall{{ID: "call_1", Type: "function", Function: schema.FunctionCall{Name: "get_weather"}}}},
		{Role: "user", Content: "never mind"},
	}})
	e := wantCode(t, err, schema.CodeBadRequest)
	if !strings.Contains(e.Message, "`tool_use` ids were found without `tool_result` blocks immediately after: call_1") {
		t.Errorf("error %q", e.Message)
	}
}

func TestProvider_Embeddings_NotOffered(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{})
	p := newProvider(t, fake, nil)
	if _, ok := any(p).(provider.Embedder); ok {
		t.Error("the Anthropic adapter claims to embed: the API has no embeddings")
	}
	_, err := p.Complete(context.Background(), &schema.Request{Input: schema.InputList{"embed me"}})
	if e := wantCode(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "no embeddings") {
		t.Errorf("error %q", e.Message)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests sent for an embedding job", n)
	}
}
