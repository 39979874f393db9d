package gemini_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

// parallelCalls is a scripted answer of two calls at once.
func parallelCalls() []geminitest.Call {
	return []geminitest.Call{
		{Name: "get_weather", Args: `{"city": "Paris", "unit": "c"}`},
		{Name: "get_time", Args: `{"tz":"Europe/Paris"}`},
	}
}

// streamCalls streams req and returns the pieces and the response.
func streamPieces(t *testing.T, p *gemini.Provider, req *schema.Request) ([]schema.ChunkChoice, *schema.Response) {
	t.Helper()
	var pieces []schema.ChunkChoice
	resp, err := p.Stream(context.Background(), req, func(c schema.ChunkChoice) error {
		pieces = append(pieces, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pieces, resp
}

// reassemble concatenates streamed tool-call pieces as an OpenAI client
// does: by index, the first piece giving id, type and name, the others
// appending arguments.
func reassemble(t *testing.T, pieces []schema.ChunkChoice) []schema.ToolCall {
	t.Helper()
	var calls []schema.ToolCall
	for _, pc := range pieces {
		for _, d := range pc.Delta.ToolCalls {
			switch {
			case d.Index == len(calls):
				if d.ID == "" || d.Type != schema.ToolTypeFunction || d.Function.Name == "" {
					t.Errorf("first piece of call %d lacks id, type or name: %+v", d.Index, d)
				}
				calls = append(calls, schema.ToolCall{ID: d.ID, Type: d.Type,
					Function: schema.FunctionCall{Name: d.Function.Name, Arguments: d.Function.Arguments}})
			case d.Index < len(calls):
				calls[d.Index].Function.Arguments += d.Function.Arguments
			default:
				t.Fatalf("piece for call %d before call %d", d.Index, len(calls))
			}
		}
	}
	return calls
}

func TestToolLoop_CompleteCallsThenAnswersFromTheResults(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Calls: parallelCalls()})
	p := newProvider(t, srv)
	req := toolRequest("weather and time in Paris?", weatherTool(), timeTool())
	req.Messages = append([]schema.Message{{Role: schema.RoleSystem, Content: "Use tools."}}, req.Messages...)

	first, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	c := first.Choices[0]
	if c.FinishReason != schema.FinishToolCalls || c.Message.Content != "" {
		t.Fatalf("choice = %+v, want tool calls only", c)
	}
	calls := c.Message.ToolCalls
	if len(calls) != 2 || calls[0].Function.Name != "get_weather" || calls[1].Function.Name != "get_time" {
		t.Fatalf("calls = %+v", calls)
	}
	if calls[0].Function.Arguments != `{"city":"Paris","unit":"c"}` || calls[1].Function.Arguments != `{"tz":"Europe/Paris"}` {
		t.Errorf("arguments %q %q, want compact JSON in the order sent", calls[0].Function.Arguments, calls[1].Function.Arguments)
	}
	if calls[0].ID == "" || calls[0].ID == calls[1].ID || calls[0].Type != schema.ToolTypeFunction {
		t.Errorf("ids %q %q type %q: want distinct ids and type function", calls[0].ID, calls[1].ID, calls[0].Type)
	}
	// Completion tokens: each call counts 1 + the words of its arguments as
	// scripted (4 and 1).
	if first.Usage.CompletionTokens != 5+2 {
		t.Errorf("usage = %+v", first.Usage)
	}

	// The caller runs the tools and sends the results back: one as a JSON
	// object, one as plain text.
	req.Messages = append(req.Messages, c.Message,
		schema.Message{Role: schema.RoleTool, ToolCallID: calls[0].ID, Content: `{"temp": 21, "sky": "clear"}`},
		schema.Message{Role: schema.RoleTool, ToolCallID: calls[1].ID, Content: "14:05"})
	second, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	body := srv.Requests()[1].Body
	want := []geminitest.Content{
		{Role: "user", Parts: []geminitest.Part{{Text: "weather and time in Paris?"}}},
		{Role: "model", Parts: []geminitest.Part{
			{FunctionCall: &geminitest.FunctionCall{Name: "get_weather", Args: []byte(`{"city":"Paris","unit":"c"}`)}},
			{FunctionCall: &geminitest.FunctionCall{Name: "get_time", Args: []byte(`{"tz":"Europe/Paris"}`)}},
		}},
		{Role: "user", Parts: []geminitest.Part{
			{FunctionResponse: &geminitest.FunctionResponse{Name: "get_weather", Response: []byte(`{"temp":21,"sky":"clear"}`)}},
			{FunctionResponse: &geminitest.FunctionResponse{Name: "get_time", Response: []byte(`{"content":"14:05"}`)}},
		}},
	}
	if !reflect.DeepEqual(body.Contents, want) {
		t.Errorf("contents =\n%+v\nwant\n%+v\nraw %s", body.Contents, want, srv.Requests()[1].Raw)
	}
	sc := second.Choices[0]
	if sc.FinishReason != schema.FinishStop || len(sc.Message.ToolCalls) != 0 ||
		sc.Message.Text() != `echo: {"temp":21,"sky":"clear"} {"content":"14:05"}` {
		t.Errorf("second answer = %+v", sc)
	}
}

func TestToolLoop_StreamedCallsReassembleToTheCompletedOnes(t *testing.T) {
	t.Parallel()
	// Two fakes with the same script give the same reply id, so the
	// generated call ids are the same too.
	whole := geminitest.NewServer(t, geminitest.Config{Calls: parallelCalls()})
	streamed := geminitest.NewServer(t, geminitest.Config{Calls: parallelCalls()})
	req := toolRequest("weather and time?", weatherTool(), timeTool())

	want, err := newProvider(t, whole).Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	pieces, resp := streamPieces(t, newProvider(t, streamed), req)
	// Gemini streams each call whole: one piece per call, in order.
	if len(pieces) != 2 || pieces[0].Delta.ToolCalls[0].Index != 0 || pieces[1].Delta.ToolCalls[0].Index != 1 {
		t.Errorf("pieces = %+v", pieces)
	}
	got := reassemble(t, pieces)
	if !reflect.DeepEqual(got, want.ToolCalls()) {
		t.Errorf("streamed calls %+v\nwant %+v", got, want.ToolCalls())
	}
	if !reflect.DeepEqual(resp.ToolCalls(), want.ToolCalls()) || resp.Choices[0].FinishReason != schema.FinishToolCalls {
		t.Errorf("stream response %+v, want the calls and finish tool_calls", resp.Choices[0])
	}
	if resp.Usage != want.Usage {
		t.Errorf("usage %+v, want %+v", resp.Usage, want.Usage)
	}

	// The loop goes on streamed: results in, text out.
	req.Messages = append(req.Messages, resp.Choices[0].Message,
		schema.Message{Role: schema.RoleTool, ToolCallID: got[0].ID, Content: "sunny"},
		schema.Message{Role: schema.RoleTool, ToolCallID: got[1].ID, Content: "noon"})
	pieces, resp = streamPieces(t, newProvider(t, streamed), req)
	var text strings.Builder
	for _, pc := range pieces {
		text.WriteString(pc.Delta.Content)
	}
	if text.String() != `echo: {"content":"sunny"} {"content":"noon"}` || resp.Text() != text.String() ||
		resp.Choices[0].FinishReason != schema.FinishStop {
		t.Errorf("streamed answer %q, response %+v", text.String(), resp.Choices[0])
	}
}

func TestToolCalls_GeminiIDIsKept(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Calls: []geminitest.Call{{ID: "gem-42", Name: "get_weather", Args: `{"city":"Rome"}`}}})
	p := newProvider(t, srv)
	resp, err := p.Complete(context.Background(), toolRequest("hi", weatherTool()))
	if err != nil {
		t.Fatal(err)
	}
	if calls := resp.ToolCalls(); len(calls) != 1 || calls[0].ID != "gem-42" {
		t.Errorf("calls = %+v", calls)
	}
	pieces, _ := streamPieces(t, p, toolRequest("hi", weatherTool()))
	if len(pieces) != 1 || pieces[0].Delta.ToolCalls[0].ID != "gem-42" {
		t.Errorf("pieces = %+v", pieces)
	}
}

func TestToolCalls_TextBeforeCallsIsKept(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	// An assistant turn with text and a call maps to one model content
	// with a text part then a functionCall part.
	req := toolRequest("hi", weatherTool())
	req.Messages = append(req.Messages,
		schema.Message{Role: schema.RoleAssistant, Content: "Let me check.", ToolCalls: []schema.ToolCall{{ID: "a", Type: "function",
			Function: schema.FunctionCall{Name: "get_weather", Arguments: ""}}}},
		schema.Message{Role: schema.RoleTool, ToolCallID: "a", Content: ""},
		schema.Message{Role: schema.RoleUser, Content: "and?"})
	if _, err := newProvider(t, srv).Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	got := srv.Requests()[0].Body.Contents
	want := []geminitest.Content{
		{Role: "user", Parts: []geminitest.Part{{Text: "hi"}}},
		{Role: "model", Parts: []geminitest.Part{{Text: "Let me check."},
			{FunctionCall: &geminitest.FunctionCall{Name: "get_weather", Args: []byte(`{}`)}}}},
		{Role: "user", Parts: []geminitest.Part{
			{FunctionResponse: &geminitest.FunctionResponse{Name: "get_weather", Response: []byte(`{"content":""}`)}},
			{Text: "and?"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("contents =\n%+v\nwant\n%+v", got, want)
	}
}

func TestToolLoop_ThoughtSignatureTravelsInTheCallID(t *testing.T) {
	t.Parallel()
	const sig = "c2lnbmF0dXJlLTE="
	srv := geminitest.NewServer(t, geminitest.Config{Calls: []geminitest.Call{
		{Name: "get_weather", Args: `{"city":"Lima"}`, ThoughtSignature: sig},
	}})
	p := newProvider(t, srv, func(o *provider.Options) { o.Model = "gemini-3-pro-preview" })
	req := toolRequest("weather?", weatherTool())
	first, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	call := first.ToolCalls()[0]
	if !strings.HasPrefix(call.ID, "call_") || !strings.HasSuffix(call.ID, "__thought__"+sig) {
		t.Fatalf("id %q should carry the signature after __thought__", call.ID)
	}
	pieces, _ := streamPieces(t, p, req)
	if got := pieces[0].Delta.ToolCalls[0].ID; !strings.HasSuffix(got, "__thought__"+sig) {
		t.Errorf("streamed id %q", got)
	}

	// Gemini 3 wants the signature back on the call: the fake refuses the
	// next turn without it.
	next := func(id string) *schema.Request {
		r := toolRequest("weather?", weatherTool())
		m := first.Choices[0].Message
		m.ToolCalls = []schema.ToolCall{call}
		m.ToolCalls[0].ID = id
		r.Messages = append(r.Messages, m, schema.Message{Role: schema.RoleTool, ToolCallID: id, Content: "warm"})
		return r
	}
	resp, err := p.Complete(context.Background(), next(call.ID))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != `echo: {"content":"warm"}` {
		t.Errorf("answer %q", resp.Text())
	}
	sent := srv.Requests()[2].Body.Contents[1].Parts[0]
	if sent.ThoughtSignature != sig || sent.FunctionCall == nil {
		t.Errorf("call part sent = %+v, want the signature on it", sent)
	}
	_, err = p.Complete(context.Background(), next("call_stripped"))
	if e := wantCode(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "thought_signature") {
		t.Errorf("message %q", e.Message)
	}
}
