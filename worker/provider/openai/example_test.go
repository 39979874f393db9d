package openai_test

import (
	"context"
	"fmt"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

func Example() {
	srv := openaitest.Start(openaitest.Config{Key: "sk-example", Reply: "Paris is the capital of France."})
	defer srv.Close()
	client := provider.NewHTTPClient()
	defer client.CloseIdleConnections()

	p, err := openai.New(provider.Options{
		Model:   "gpt-4o-mini",
		APIBase: srv.URL(), // e.g. http://127.0.0.1:PORT/v1
		APIKey:  "sk-example",
		HTTP:    client,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{
		{Role: schema.RoleSystem, Content: "Answer in one sentence."},
		{Role: schema.RoleUser, Content: "What is the capital of France?"},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s [%s, %d+%d tokens]\n", resp.Text(), resp.Choices[0].FinishReason,
		resp.Usage.PromptTokens, resp.Usage.CompletionTokens)
	// Output: Paris is the capital of France. [stop, 10+6 tokens]
}
