package openai

import (
	"encoding/json"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// BenchmarkBody_PlainChat measures mapping and encoding a plain chat
// request (no tools, no images): the path every ordinary job takes.
func BenchmarkBody_PlainChat(b *testing.B) {
	p, err := New(provider.Options{Model: "gpt-test", APIBase: "http://127.0.0.1:1/v1"})
	if err != nil {
		b.Fatal(err)
	}
	temp, max := 0.2, 256
	req := &schema.Request{
		Messages: []schema.Message{
			{Role: schema.RoleSystem, Content: "You are terse."},
			{Role: schema.RoleUser, Content: "What is the capital of France?"},
			{Role: schema.RoleAssistant, Content: "Paris."},
			{Role: schema.RoleUser, Content: "And of Italy?"},
		},
		Temperature: &temp, MaxTokens: &max, Stop: schema.StopList{"\n\n"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(p.body(req, true)); err != nil {
			b.Fatal(err)
		}
	}
}
