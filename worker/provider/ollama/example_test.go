package ollama_test

import (
	"context"
	"fmt"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

func Example() {
	// A fake Ollama host; a real one is at ollama.DefaultAPIBase.
	host := ollamatest.Start(ollamatest.Config{Reply: "Hello from Ollama."})
	defer host.Close()
	client := provider.NewHTTPClient()
	defer client.CloseIdleConnections()

	p, err := ollama.New(provider.Options{Model: ollamatest.DefaultModel, APIBase: host.URL(), HTTP: client})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.CheckModel(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	resp, err := p.Complete(context.Background(), &schema.Request{
		Messages: []schema.Message{{Role: schema.RoleUser, Content: "Say hello."}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Text(), resp.Choices[0].FinishReason, resp.Usage.TotalTokens)
	// Output: Hello from Ollama. stop 5
}
