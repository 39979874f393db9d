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
	resp := &schema.Response{ID: "chatcmpl-1", Object: schema.ObjectCompletion, Model: "m",
		Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: "Paris. It was the seat of the Capetian kings."}, FinishReason: schema.FinishStop}},
		Usage:   schema.Usage{PromptTokens: 30, CompletionTokens: 12, TotalTokens: 42},
		Routing: &schema.Routing{Tier: "tier1", Deployment: "d1", Worker: "w1", Provider: "openai", Model: "m", Attempts: 1}}
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
