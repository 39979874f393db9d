package anthropic_test

import (
	"context"
	"fmt"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/anthropic"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
)

func Example() {
	fake := anthropictest.Start(anthropictest.Config{Key: "sk-ant-example"})
	defer fake.Close()
	client := provider.NewHTTPClient()
	defer client.CloseIdleConnections()

	p, err := anthropic.New(provider.Options{
		Model:   "claude-sonnet-4-5",
		APIBase: fake.URL(), // the host root; the adapter adds /v1/messages
		APIKey:  "sk-ant-example",
		HTTP:    client,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{
		{Role: schema.RoleSystem, Content: "Be brief."},
		{Role: schema.RoleUser, Content: "Hello, Claude"},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Text(), resp.Choices[0].FinishReason, resp.Usage.TotalTokens)
	// Output: echo: Hello, Claude stop 7
}
