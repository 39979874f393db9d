package ollama_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

var weatherParams = `{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string"}},"required":["city"]}`

func weatherTools() []schema.Tool {
	return []schema.Tool{
		{Type: "function", Function: schema.Function{Name: "get_weather", Description: "Weather in a city",
			Parameters: schema.RawJSON(weatherParams), Strict: ptr(true)}},
		{Type: "function", Function: schema.Function{Name: "get_time", Parameters: schema.RawJSON(`{"type":"object"}`)}},
	}
}

// toolCall scripts a tool call as Ollama answers it: arguments an object, keys
// in the order written, no id.
func toolCall(name, args string) ollamatest.ToolCall {
	return ollamatest.ToolCall{Function: ollamatest.ToolCallFunction{Name: name, Arguments: json.RawMessage(args)}}
}

// toolLoop answers the first turn with the calls, and a turn that ends
// with tool results with a text naming the results it got.
func toolLoop(calls ...ollamatest.ToolCall) func(ollamatest.ChatRequest) ollamatest.Answer {
	return func(req ollamatest.ChatRequest) ollamatest.Answer {
		last := req.Messages[len(req.Messages)-1]
		if last.Role != "tool" {
			return ollamatest.Answer{ToolCalls: calls}
		}
		var got []string
		for _, m := range req.Messages {
			if m.Role == "tool" {
				got = append(got, m.ToolName+"="+m.Content)
			}
		}
		return ollamatest.Answer{Content: "results: " + strings.Join(got, " ")}
	}
}

// collect streams req and returns the pieces emitted and the response.
func collect(t *testing.T, p *ollama.Provider, req *schema.Request) ([]schema.ChunkChoice, *schema.Response) {
	t.Helper()
	var pieces []schema.ChunkChoice
	resp, err := p.Stream(context.Background(), req, func(c schema.ChunkChoice) error {
		pieces = append(pieces, c)
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	return pieces, resp
}

// reassemble joins streamed tool-call pieces as an OpenAI client does.
func reassemble(t *testing.T, pieces []schema.ChunkChoice) []schema.ToolCall {
	t.Helper()
	var calls []schema.ToolCall
	for _, p := range pieces {
		for _, d := range p.Delta.ToolCalls {
			switch {
			case d.Index == len(calls):
				if d.ID == "" || d.Type != schema.ToolTypeFunction || d.Function.Name == "" {
					t.Errorf("first piece of call %d = %+v, want id, type and name", d.Index, d)
				}
				calls = append(calls, schema.ToolCall{ID: d.ID, Type: d.Type,
					Function: schema.FunctionCall{Name: d.Function.Name}})
			case d.Index > len(calls) || d.Index < 0:
				t.Fatalf("piece for call %d before call %d", d.Index, len(calls))
			}
			calls[d.Index].Function.Arguments += d.Function.Arguments
		}
	}
	return calls
}

func TestProvider_Tools_DeclaredAndCallAnswered(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{
		Answer: toolLoop(toolCall("get_weather", `{"city": "Paris", "unit": "celsius"}`))})
	p := newProvider(t, fake.URL())

	resp, err := p.Complete(context.Background(), &schema.Request{
		Messages: []schema.Message{user("weather in Paris?")}, Tools: weatherTools(),
		ToolChoice: &schema.ToolChoice{Mode: schema.ToolChoiceAuto}, ParallelToolCalls: ptr(true)})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	c := resp.Choices[0]
	if c.FinishReason != schema.FinishToolCalls || c.Message.Content != "" {
		t.Errorf("finish %q, content %q; want tool_calls and no text", c.FinishReason, c.Message.Content)
	}
	if len(c.Message.ToolCalls) != 1 {
		t.Fatalf("tool calls = %+v, want 1", c.Message.ToolCalls)
	}
	tc := c.Message.ToolCalls[0]
	// Arguments: a compact string, keys in the order the model wrote them.
	if tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != `{"city":"Paris","unit":"celsius"}` ||
		!strings.HasPrefix(tc.ID, "call_") {
		t.Errorf("tool call = %+v", tc)
	}
	// Usage: prompt 3 words; the reply is one call.
	if resp.Usage != (schema.Usage{PromptTokens: 3, CompletionTokens: 1, TotalTokens: 4}) {
		t.Errorf("usage = %+v", resp.Usage)
	}

	body := lastChat(t, fake).Body
	if len(body.Tools) != 2 {
		t.Fatalf("tools sent = %+v, want 2", body.Tools)
	}
	w := body.Tools[0]
	if w.Type != "function" || w.Function.Name != "get_weather" || w.Function.Description != "Weather in a city" ||
		string(w.Function.Parameters) != weatherParams {
		t.Errorf("tool sent = %+v (parameters %s)", w, w.Function.Parameters)
	}
}

func TestProvider_Tools_FullLoop(t *testing.T) {
	t.Parallel()
	for _, streamed := range []bool{false, true} {
		fake := ollamatest.NewServer(t, ollamatest.Config{
			Answer: toolLoop(toolCall("get_weather", `{"city":"Paris"}`))})
		p := newProvider(t, fake.URL())
		req := &schema.Request{Messages: []schema.Message{user("weather in Paris?")}, Tools: weatherTools()}
		turn := func() *schema.Response {
			if streamed {
				_, resp := collect(t, p, req)
				return resp
			}
			resp, err := p.Complete(context.Background(), req)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			return resp
		}

		first := turn()
		calls := first.ToolCalls()
		if len(calls) != 1 || first.Choices[0].FinishReason != schema.FinishToolCalls {
			t.Fatalf("streamed=%v: first turn = %+v, want one call", streamed, first.Choices[0])
		}
		req.Messages = append(req.Messages, first.Choices[0].Message,
			schema.Message{Role: schema.RoleTool, ToolCallID: calls[0].ID, Content: "sunny"})
		second := turn()
		if got := second.Text(); got != "results: get_weather=sunny" || second.Choices[0].FinishReason != schema.FinishStop {
			t.Errorf("streamed=%v: second turn = %q, %q", streamed, got, second.Choices[0].FinishReason)
		}

		reqs := fake.Requests()
		sent := reqs[len(reqs)-1].Body.Messages
		if len(sent) != 3 {
			t.Fatalf("streamed=%v: messages sent = %+v", streamed, sent)
		}
		asst, tool := sent[1], sent[2]
		if asst.Role != "assistant" || asst.Content != "" || len(asst.ToolCalls) != 1 ||
			asst.ToolCalls[0].Function.Name != "get_weather" || string(asst.ToolCalls[0].Function.Arguments) != `{"city":"Paris"}` {
			t.Errorf("streamed=%v: assistant message sent = %+v", streamed, asst)
		}
		if tool.Role != "tool" || tool.ToolName != "get_weather" || tool.Content != "sunny" {
			t.Errorf("streamed=%v: tool message sent = %+v", streamed, tool)
		}
	}
}

func TestProvider_Tools_ParallelCallsStreamedReassembleAsNonStreamed(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Answer: func(ollamatest.ChatRequest) ollamatest.Answer {
		return ollamatest.Answer{Content: "Let me check.", ToolCalls: []ollamatest.ToolCall{
			toolCall("get_weather", `{"city":"Paris"}`),
			toolCall("get_weather", `{"city":"Oslo","unit":"celsius"}`),
			toolCall("get_time", `{}`),
			toolCall("get_time", `{}`), // the same call again: its own id
		}}
	}})
	p := newProvider(t, fake.URL())
	req := &schema.Request{Messages: []schema.Message{user("weather in Paris and Oslo, and the time")}, Tools: weatherTools()}

	whole, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	pieces, streamed := collect(t, p, req)

	want := whole.ToolCalls()
	if len(want) != 4 || want[1].Function.Arguments != `{"city":"Oslo","unit":"celsius"}` || want[2].Function.Name != "get_time" {
		t.Fatalf("non-streamed calls = %+v", want)
	}
	ids := map[string]bool{}
	for _, c := range want {
		ids[c.ID] = true
	}
	if len(ids) != 4 {
		t.Errorf("ids %v are not distinct", ids)
	}
	if got := reassemble(t, pieces); !reflect.DeepEqual(got, want) {
		t.Errorf("streamed pieces reassemble to %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(streamed.ToolCalls(), want) {
		t.Errorf("Stream's response calls = %+v, want %+v", streamed.ToolCalls(), want)
	}
	if streamed.Text() != "Let me check." || whole.Text() != "Let me check." {
		t.Errorf("text streamed %q, whole %q", streamed.Text(), whole.Text())
	}
	if streamed.Choices[0].FinishReason != schema.FinishToolCalls || whole.Choices[0].FinishReason != schema.FinishToolCalls {
		t.Errorf("finish reasons %q, %q; want tool_calls", streamed.Choices[0].FinishReason, whole.Choices[0].FinishReason)
	}
	if streamed.Usage != whole.Usage {
		t.Errorf("usage streamed %+v, whole %+v", streamed.Usage, whole.Usage)
	}
	// The text comes first, then the calls; no piece carries a finish.
	if len(pieces) == 0 || pieces[0].Delta.Content == "" {
		t.Errorf("first piece = %+v, want text", pieces)
	}
	for _, pc := range pieces {
		if pc.FinishReason != nil || pc.Index != 0 {
			t.Errorf("piece %+v carries a finish reason or another choice", pc)
		}
	}
}

func TestProvider_Tools_HostIDKept(t *testing.T) {
	t.Parallel()
	c := toolCall("get_time", `{}`)
	c.ID = "call_from_host"
	fake := ollamatest.NewServer(t, ollamatest.Config{Answer: func(ollamatest.ChatRequest) ollamatest.Answer {
		return ollamatest.Answer{ToolCalls: []ollamatest.ToolCall{c}}
	}})
	p := newProvider(t, fake.URL())
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("time?")}, Tools: weatherTools()})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := resp.ToolCalls(); len(got) != 1 || got[0].ID != "call_from_host" || got[0].Function.Arguments != "{}" {
		t.Errorf("calls = %+v, want the host's id kept", got)
	}
}

func TestProvider_ToolChoice_AutoSendsTools(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
	p := newProvider(t, fake.URL())
	_, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("hi")},
		Tools: weatherTools(), ToolChoice: &schema.ToolChoice{Mode: schema.ToolChoiceAuto}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := lastChat(t, fake).Body.Tools; len(got) != 2 {
		t.Errorf("tools sent = %+v, want both", got)
	}
}

func TestProvider_ToolChoice_NoneDropsTools(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
	p := newProvider(t, fake.URL())
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("hi")},
		Tools: weatherTools(), ToolChoice: &schema.ToolChoice{Mode: schema.ToolChoiceNone}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := lastChat(t, fake).Body.Tools; len(got) != 0 {
		t.Errorf("tools sent = %+v, want none with tool_choice none", got)
	}
	if resp.Text() != "ok" || resp.Choices[0].FinishReason != schema.FinishStop {
		t.Errorf("reply = %+v", resp.Choices[0])
	}
}

func TestProvider_ToolChoice_ForcedRefusedUnlessDropParams(t *testing.T) {
	t.Parallel()
	for _, choice := range []*schema.ToolChoice{
		{Mode: schema.ToolChoiceRequired},
		{Mode: schema.ToolChoiceFunction, Function: "get_time"},
	} {
		fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
		req := &schema.Request{Messages: []schema.Message{user("hi")}, Tools: weatherTools(), ToolChoice: choice}

		_, err := newProvider(t, fake.URL()).Complete(context.Background(), req)
		e := wantError(t, err, schema.CodeBadRequest)
		if !strings.Contains(e.Message, "tool_choice") || !strings.HasPrefix(e.Message, "ollama: ") {
			t.Errorf("%+v: error %q does not name tool_choice", choice, e.Message)
		}
		if n := len(fake.Requests()); n != 0 {
			t.Errorf("%+v: %d requests sent, want none", choice, n)
		}

		dropping := newProvider(t, fake.URL(), func(o *provider.Options) { o.DropParams = true })
		if _, err := dropping.Complete(context.Background(), req); err != nil {
			t.Fatalf("%+v with drop_params: %v", choice, err)
		}
		if got := lastChat(t, fake).Body.Tools; len(got) != 2 {
			t.Errorf("%+v with drop_params: tools sent = %+v, want them as with auto", choice, got)
		}
	}
}

func TestProvider_ParallelToolCalls_FalseRefusedUnlessDropParams(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
	req := &schema.Request{Messages: []schema.Message{user("hi")}, Tools: weatherTools(), ParallelToolCalls: ptr(false)}
	_, err := newProvider(t, fake.URL()).Complete(context.Background(), req)
	if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "parallel_tool_calls") {
		t.Errorf("error %q does not name parallel_tool_calls", e.Message)
	}
	dropping := newProvider(t, fake.URL(), func(o *provider.Options) { o.DropParams = true })
	if _, err := dropping.Complete(context.Background(), req); err != nil {
		t.Fatalf("with drop_params: %v", err)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("%d requests sent, want only the dropping one", n)
	}
}

func TestProvider_ToolMessages_BadShapesRefusedBeforeTheCall(t *testing.T) {
	t.Parallel()
	asst := func(args string) schema.Message {
		return schema.Message{Role: schema.RoleAssistant, ToolCalls: []schema.ToolCall{{ID: "c1", Type: "function",
			Function: schema.FunctionCall{Name: "get_time", Arguments: args}}}}
	}
	for _, tc := range []struct {
		name  string
		msgs  []schema.Message
		field string
	}{
		{"arguments not JSON", []schema.Message{user("x"), asst(`{"a":`)}, "messages[1].tool_calls[0].function.arguments"},
		{"arguments an array", []schema.Message{user("x"), asst(`[1]`)}, "messages[1].tool_calls[0].function.arguments"},
		{"arguments a string", []schema.Message{user("x"), asst(`"x"`)}, "messages[1].tool_calls[0].function.arguments"},
		{"result without a call", []schema.Message{user("x"), asst(`{}`),
			{Role: schema.RoleTool, ToolCallID: "c2", Content: "r"}}, "messages[2].tool_call_id"},
	} {
		fake := ollamatest.NewServer(t, ollamatest.Config{})
		_, err := newProvider(t, fake.URL()).Complete(context.Background(), &schema.Request{Messages: tc.msgs, Tools: weatherTools()})
		if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, tc.field) {
			t.Errorf("%s: error %q does not name %s", tc.name, e.Message, tc.field)
		}
		if n := len(fake.Requests()); n != 0 {
			t.Errorf("%s: %d requests sent, want none", tc.name, n)
		}
	}
}

func TestProvider_ToolMessages_EmptyArgumentsAreAnEmptyObject(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
	msgs := []schema.Message{user("time?"),
		{Role: schema.RoleAssistant, ToolCalls: []schema.ToolCall{{ID: "c1", Type: "function",
			Function: schema.FunctionCall{Name: "get_time", Arguments: ""}}}},
		{Role: schema.RoleTool, ToolCallID: "c1", Content: "noon"}}
	if _, err := newProvider(t, fake.URL()).Complete(context.Background(), &schema.Request{Messages: msgs, Tools: weatherTools()}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := lastChat(t, fake).Body.Messages[1].ToolCalls; len(got) != 1 || string(got[0].Function.Arguments) != "{}" {
		t.Errorf("call sent = %+v, want arguments {}", got)
	}
}

func TestProvider_Tools_ModelWithoutToolsIsBadRequest(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{NoTools: []string{ollamatest.DefaultModel}})
	_, err := newProvider(t, fake.URL()).Complete(context.Background(), &schema.Request{
		Messages: []schema.Message{user("hi")}, Tools: weatherTools()})
	if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "does not support tools") {
		t.Errorf("error %q, want Ollama's message", e.Message)
	}
}

func TestProvider_Tools_CallsInTheFinalStreamLineReassemble(t *testing.T) {
	t.Parallel()
	answer := func(ollamatest.ChatRequest) ollamatest.Answer {
		return ollamatest.Answer{ToolCalls: []ollamatest.ToolCall{
			toolCall("get_weather", `{"city":"Paris"}`), toolCall("get_time", `{}`)}}
	}
	fake := ollamatest.NewServer(t, ollamatest.Config{Answer: answer, CallsInFinalLine: true})
	p := newProvider(t, fake.URL())
	req := &schema.Request{Messages: []schema.Message{user("weather and time")}, Tools: weatherTools()}
	whole, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	pieces, streamed := collect(t, p, req)
	want := whole.ToolCalls()
	if len(want) != 2 {
		t.Fatalf("calls = %+v, want 2", want)
	}
	if got := reassemble(t, pieces); !reflect.DeepEqual(got, want) {
		t.Errorf("pieces reassemble to %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(streamed.ToolCalls(), want) || streamed.Choices[0].FinishReason != schema.FinishToolCalls {
		t.Errorf("streamed response = %+v, want the calls and tool_calls", streamed.Choices[0])
	}
}

func TestProvider_Tools_MalformedCallsFromTheHostAreProviderErrors(t *testing.T) {
	t.Parallel()
	many := make([]ollamatest.ToolCall, ollama.MaxToolCalls+1)
	for i := range many {
		many[i] = toolCall("get_time", `{}`)
	}
	for name, calls := range map[string][]ollamatest.ToolCall{
		"call without a name": {toolCall("", `{}`)},
		"too many calls":      many,
	} {
		fake := ollamatest.NewServer(t, ollamatest.Config{Answer: func(ollamatest.ChatRequest) ollamatest.Answer {
			return ollamatest.Answer{ToolCalls: calls}
		}})
		p := newProvider(t, fake.URL())
		req := &schema.Request{Messages: []schema.Message{user("time?")}, Tools: weatherTools()}
		_, err := p.Complete(context.Background(), req)
		wantError(t, err, schema.CodeProviderError)
		_, err = p.Stream(context.Background(), req, func(schema.ChunkChoice) error { return nil })
		if e := wantError(t, err, schema.CodeProviderError); !strings.Contains(e.Message, "tool call") {
			t.Errorf("%s: streamed error %q", name, e.Message)
		}
	}
}
