package schema_test

import (
	"testing"

	"github.com/llmq/llmq/schema"
)

// plainRequest is the plain path's job: a system and a user message and a
// token limit, as most jobs are.
func plainRequest() *schema.Request {
	n := 256
	return &schema.Request{Model: "tier1", MaxTokens: &n, Messages: []schema.Message{
		{Role: schema.RoleSystem, Content: "You are a helpful assistant. Answer briefly."},
		{Role: schema.RoleUser, Content: "What is the capital of France? Explain in one sentence why it became the capital."},
	}}
}

func BenchmarkDecodeRequest(b *testing.B) {
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		data, err := codec.Marshal(plainRequest())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := schema.DecodeRequest(codec, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshalResponse(b *testing.B) {
	resp := benchResponse()
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Marshal(resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchResponse is the plain path's reply: one choice, usage and routing.
func benchResponse() *schema.Response {
	return &schema.Response{ID: "chatcmpl-1", Object: schema.ObjectCompletion, Created: 1700000000, Model: "m",
		Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: "Paris. It was the seat of the Capetian kings."}, FinishReason: schema.FinishStop}},
		Usage:   schema.Usage{PromptTokens: 30, CompletionTokens: 12, TotalTokens: 42},
		Routing: &schema.Routing{Tier: "tier1", Deployment: "d1", Worker: "w1", Provider: "openai", Model: "m", Attempts: 1, QueueMs: 0.25, CallMs: 812.5}}
}

// benchChunk is one token of a streamed reply, the commonest message of a
// stream.
func benchChunk() *schema.Chunk {
	return &schema.Chunk{ID: "chatcmpl-1", Object: schema.ObjectChunk, Created: 1700000000, Model: "m",
		Choices: []schema.ChunkChoice{{Delta: schema.Delta{Content: " Paris"}}}}
}

func BenchmarkMarshalRequest(b *testing.B) {
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		b.Run(codec.String(), func(b *testing.B) {
			req := plainRequest()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Marshal(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeReply(b *testing.B) {
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		data, err := codec.Marshal(benchResponse())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := schema.DecodeReply(codec, data, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshalChunk(b *testing.B) {
	c := benchChunk()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schema.MsgPack.Marshal(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalChunk(b *testing.B) {
	data, err := schema.MsgPack.Marshal(benchChunk())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var c schema.Chunk
		if err := schema.MsgPack.Unmarshal(data, &c); err != nil {
			b.Fatal(err)
		}
	}
}
