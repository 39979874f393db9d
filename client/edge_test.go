package client_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

// simFleet starts a dispatcher and a sim worker for tier (an embedding
// one when embedding is set) and returns a client.
func simFleet(t *testing.T, tier string, embedding bool) *client.Client {
	t.Helper()
	srv := brokertest.NewServer(t, brokertest.Options{})
	subjects := brokertest.Subjects(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := dispatcher.New(dispatcher.Config{Conn: srv.Connect("dispatcher"), Subjects: subjects, Tiers: []string{tier}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	p, err := sim.New(sim.Config{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Conn: srv.Connect("worker"), Subjects: subjects, Tier: tier, Provider: p, ProviderName: "sim",
		Model: "s", Embedding: embedding, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.WaitWorkers(ctx, tier, 1); err != nil {
		t.Fatal(err)
	}
	return client.New(srv.Connect("producer"), client.Config{Subjects: subjects, Timeout: wait})
}

func TestStream_ToolCallDeltas_AssembleToTheCallCompleteReturns(t *testing.T) {
	t.Parallel()
	c := simFleet(t, "tools", false)
	req := &schema.Request{Messages: []schema.Message{{Role: "user", Content: "weather in Lima"}},
		Tools: []schema.Tool{{Type: "function", Function: schema.Function{Name: "get_weather",
			Parameters: schema.RawJSON(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}}}
	ctx := context.Background()
	plain, err := c.Complete(ctx, "tools", req)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Stream(ctx, "tools", req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deltas := 0
	for ch, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		for _, cc := range ch.Choices {
			deltas += len(cc.Delta.ToolCalls)
		}
	}
	if deltas < 2 {
		t.Fatalf("%d tool-call deltas, want the call in pieces", deltas)
	}
	got := s.Response()
	want := plain.ToolCalls()
	if len(want) != 1 || len(got.ToolCalls()) != 1 {
		t.Fatalf("calls: streamed %+v, plain %+v", got.ToolCalls(), want)
	}
	g := got.ToolCalls()[0]
	if g.ID == "" || g.Type != "function" || g.Function != want[0].Function || g.Function.Arguments != `{"city":"Lima"}` {
		t.Fatalf("streamed call %+v, plain %+v", g, want[0])
	}
	if got.Choices[0].FinishReason != schema.FinishToolCalls || got.Usage.CompletionTokens == 0 || got.Routing == nil || got.Text() != "" {
		t.Fatalf("assembled %+v: want finish tool_calls, usage, routing, no text", got)
	}
}

func TestStream_Response_AssemblesText(t *testing.T) {
	t.Parallel()
	c := simFleet(t, "text", false)
	req := &schema.Request{Messages: []schema.Message{{Role: "user", Content: "a b"}}}
	s, err := c.Stream(context.Background(), "text", req)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Response(); got.Text() != "a b a b a b a b a b a b a b a b" || got.Choices[0].FinishReason != "stop" || got.ToolCalls() != nil {
		t.Fatalf("assembled %q (%s, calls %v)", got.Text(), got.Choices[0].FinishReason, got.ToolCalls())
	}
}

func TestAccumulator_UntrustedIndexesAreDropped(t *testing.T) {
	t.Parallel()
	var a client.Accumulator
	stop := "stop"
	a.Add(&schema.Chunk{Choices: []schema.ChunkChoice{
		{Index: -1, Delta: schema.Delta{Content: "x"}},
		{Index: 1 << 30, Delta: schema.Delta{Content: "x"}},
		{Index: 0, Delta: schema.Delta{Content: "ok", ToolCalls: []schema.ToolCallDelta{{Index: 1 << 30, ID: "big"}, {Index: -3}}}, FinishReason: &stop},
	}})
	r := a.Response()
	if len(r.Choices) != 1 || r.Text() != "ok" || len(r.ToolCalls()) != 0 {
		t.Fatalf("assembled %+v", r)
	}
}

func TestEmbed_ReturnsOneVectorPerInputInOrder(t *testing.T) {
	t.Parallel()
	c := simFleet(t, "emb", true)
	dims := 4
	resp, err := c.Embed(context.Background(), "emb", &schema.Request{Input: schema.InputList{"x", "y", "x"}, Dimensions: &dims})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 3 || len(resp.Data[0].Embedding.Floats) != 4 || resp.Data[0].Embedding.Floats[0] != resp.Data[2].Embedding.Floats[0] ||
		resp.Data[0].Embedding.Floats[0] == resp.Data[1].Embedding.Floats[0] || resp.Routing == nil || resp.Routing.Tier != "emb" {
		t.Fatalf("reply %+v", resp)
	}
	// The base64 encoding decodes to the same floats.
	b64, err := c.Embed(context.Background(), "emb", &schema.Request{Input: schema.InputList{"x"}, Dimensions: &dims, EncodingFormat: "base64"})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range b64.Data[0].Embedding.Floats {
		if f != resp.Data[0].Embedding.Floats[i] {
			t.Fatalf("base64 vector %v, float vector %v", b64.Data[0].Embedding.Floats, resp.Data[0].Embedding.Floats)
		}
	}
	// A chat job to the embedding tier is a bad_request, and Complete
	// refuses an embedding job before sending it.
	_, err = c.Complete(context.Background(), "emb", &schema.Request{Messages: []schema.Message{{Role: "user", Content: "hi"}}})
	if schema.CodeOf(err) != schema.CodeBadRequest {
		t.Fatalf("chat job to an embedding tier: %v, want bad_request", err)
	}
	if _, err := c.Complete(context.Background(), "emb", &schema.Request{Input: schema.InputList{"x"}}); schema.CodeOf(err) != schema.CodeBadRequest {
		t.Fatalf("Complete of an embedding job: %v", err)
	}
	if _, err := c.Embed(context.Background(), "emb", &schema.Request{Messages: []schema.Message{{Role: "user", Content: "hi"}}}); schema.CodeOf(err) != schema.CodeBadRequest {
		t.Fatalf("Embed of a chat job: %v", err)
	}
	// A streamed chat job to the embedding tier ends with the bad_request.
	s, err := c.Stream(context.Background(), "emb", &schema.Request{Messages: []schema.Message{{Role: "user", Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, last, err := s.Next(); !last || schema.CodeOf(err) != schema.CodeBadRequest {
		t.Fatalf("stream to an embedding tier: last %v, %v; want bad_request", last, err)
	}
}
