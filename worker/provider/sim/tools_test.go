package sim_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/sim"
)

func weatherTools() []schema.Tool {
	return []schema.Tool{
		{Type: "function", Function: schema.Function{Name: "get_weather",
			Parameters: schema.RawJSON(`{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},"unit":{"type":"string","enum":["c","f"]}},"required":["city","unit"]}`)}},
		{Type: "function", Function: schema.Function{Name: "get_time",
			Parameters: schema.RawJSON(`{"type":"object","properties":{"zone":{"type":"string"}},"required":["zone"]}`)}},
	}
}

func TestSim_Tools_CallsFirstToolWithRequiredArgumentsThenQuotesResult(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{})
	req := ask("weather in Paris?")
	req.Tools = weatherTools()
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.ToolCalls()
	if len(calls) != 1 || resp.Choices[0].FinishReason != schema.FinishToolCalls {
		t.Fatalf("reply %+v: want one tool call, finish tool_calls", resp.Choices)
	}
	c := calls[0]
	var args map[string]any
	if err := json.Unmarshal([]byte(c.Function.Arguments), &args); err != nil {
		t.Fatalf("arguments %q: %v", c.Function.Arguments, err)
	}
	if c.Function.Name != "get_weather" || c.ID == "" || c.Type != "function" || args["city"] != "Paris" || args["unit"] != "c" || len(args) != 2 {
		t.Fatalf("call %+v (args %v): want get_weather{city: Paris, unit: c} with an id", c, args)
	}

	req.Messages = append(req.Messages, resp.Choices[0].Message,
		schema.Message{Role: schema.RoleTool, ToolCallID: c.ID, Content: "sunny 21C"})
	if err := req.Validate(); err != nil {
		t.Fatalf("the loop's second request is invalid: %v", err)
	}
	resp, err = p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Text(); got != "get_weather returned sunny 21C" || resp.Choices[0].FinishReason != schema.FinishStop || len(resp.ToolCalls()) != 0 {
		t.Fatalf("answer %q (%s): want the tool's result quoted", got, resp.Choices[0].FinishReason)
	}
}

func TestSim_Tools_ChoiceForcesNamedToolAndNoneAnswersText(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{Tokens: 3})
	req := ask("time in UTC")
	req.Tools = weatherTools()
	req.ToolChoice = &schema.ToolChoice{Mode: schema.ToolChoiceFunction, Function: "get_time"}
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.ToolCalls(); len(c) != 1 || c[0].Function.Name != "get_time" || c[0].Function.Arguments != `{"zone":"UTC"}` {
		t.Fatalf("calls %+v: want get_time{zone: UTC}", c)
	}
	req.ToolChoice = &schema.ToolChoice{Mode: schema.ToolChoiceNone}
	resp, err = p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ToolCalls()) != 0 || resp.Text() != "time in UTC" {
		t.Fatalf("reply %+v: want text, no call, with tool_choice none", resp.Choices[0].Message)
	}
}

func TestSim_Tools_StreamedPiecesReassembleToTheCall(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{})
	req := ask("weather in Oslo")
	req.Tools = weatherTools()
	var pieces []schema.ToolCallDelta
	resp, err := p.Stream(context.Background(), req, func(c schema.ChunkChoice) error {
		if c.Delta.Content != "" {
			t.Errorf("text %q in a tool-call stream", c.Delta.Content)
		}
		pieces = append(pieces, c.Delta.ToolCalls...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pieces) < 2 || pieces[0].ID == "" || pieces[0].Function.Name != "get_weather" || pieces[1].ID != "" {
		t.Fatalf("pieces %+v: want id and name first, then argument fragments", pieces)
	}
	var args strings.Builder
	for _, d := range pieces {
		if d.Index != 0 {
			t.Fatalf("piece of call %d, want 0", d.Index)
		}
		args.WriteString(d.Function.Arguments)
	}
	want := resp.ToolCalls()[0]
	if pieces[0].ID != want.ID || args.String() != want.Function.Arguments || resp.Choices[0].FinishReason != schema.FinishToolCalls {
		t.Fatalf("streamed %s %q, returned %+v", pieces[0].ID, args.String(), want)
	}
}

func TestSim_JSONSchema_AnswersObjectWithRequiredProperties(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{})
	req := ask("describe Rome")
	req.ResponseFormat = &schema.ResponseFormat{Type: schema.FormatJSONSchema, JSONSchema: &schema.JSONSchema{Name: "city",
		Schema: schema.RawJSON(`{"type":"object","properties":{"name":{"type":"string"},"population":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},"capital":{"type":"boolean"}},"required":["name","population","tags","capital"]}`)}}
	var streamed strings.Builder
	resp, err := p.Stream(context.Background(), req, func(c schema.ChunkChoice) error {
		streamed.WriteString(c.Delta.Content)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"capital":true,"name":"Rome","population":1,"tags":["Rome"]}`
	if resp.Text() != want || streamed.String() != want {
		t.Fatalf("content %q, streamed %q: want %s", resp.Text(), streamed.String(), want)
	}
	req.ResponseFormat = &schema.ResponseFormat{Type: schema.FormatJSONObject}
	resp, err = p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]string
	if err := json.Unmarshal([]byte(resp.Text()), &obj); err != nil || obj["answer"] == "" {
		t.Fatalf("json_object content %q: want {\"answer\": …}", resp.Text())
	}
}

func TestSim_Embed_SameTextSameUnitVector(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{Name: "emb"})
	dims := 16
	req := &schema.Request{Input: schema.InputList{"hello world", "other", "hello world"}, Dimensions: &dims}
	resp, err := p.Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 3 || resp.Model != "emb" || resp.Usage.PromptTokens != 5 {
		t.Fatalf("reply %+v: want 3 vectors of model emb, 5 prompt tokens (words)", resp)
	}
	a, b, c := resp.Data[0].Embedding.Floats, resp.Data[1].Embedding.Floats, resp.Data[2].Embedding.Floats
	if len(a) != dims || resp.Data[2].Index != 2 {
		t.Fatalf("vector of %d dims at index %d, want %d at 2", len(a), resp.Data[2].Index, dims)
	}
	var norm, same float64
	for i := range a {
		norm += float64(a[i] * a[i])
		if a[i] != c[i] {
			t.Fatal("the same text gave two vectors")
		}
		if a[i] == b[i] {
			same++
		}
	}
	if norm < 0.99 || norm > 1.01 || same == float64(dims) {
		t.Fatalf("norm² %v, %v equal components: want a unit vector unlike another text's", norm, same)
	}
}

func TestSim_Embed_ErrorRateOneFails(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{ErrorRate: 1})
	_, err := p.Embed(context.Background(), &schema.Request{Input: schema.InputList{"x"}})
	if schema.CodeOf(err) != schema.CodeProviderError {
		t.Fatalf("err %v: want provider_error", err)
	}
}
