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

func ExampleProvider_Embed() {
	host := ollamatest.Start(ollamatest.Config{EmbedModels: []string{"nomic-embed-text"}, EmbedDims: 4})
	defer host.Close()
	client := provider.NewHTTPClient()
	defer client.CloseIdleConnections()

	p, err := ollama.New(provider.Options{Model: "nomic-embed-text", APIBase: host.URL(), HTTP: client})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := p.Embed(context.Background(), &schema.Request{Input: schema.InputList{"first text", "second"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range resp.Data {
		fmt.Println(d.Index, len(d.Embedding.Floats))
	}
	fmt.Println(resp.Usage.PromptTokens)
	// Output:
	// 0 4
	// 1 4
	// 3
}

func ExampleProvider_Stream_toolCalls() {
	host := ollamatest.Start(ollamatest.Config{Answer: func(req ollamatest.ChatRequest) ollamatest.Answer {
		return ollamatest.Answer{ToolCalls: []ollamatest.ToolCall{{Function: ollamatest.ToolCallFunction{
			Name: "get_weather", Arguments: []byte(`{"city": "Paris"}`)}}}}
	}})
	defer host.Close()
	client := provider.NewHTTPClient()
	defer client.CloseIdleConnections()

	p, err := ollama.New(provider.Options{Model: ollamatest.DefaultModel, APIBase: host.URL(), HTTP: client})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := p.Stream(context.Background(), &schema.Request{
		Messages: []schema.Message{{Role: schema.RoleUser, Content: "Weather in Paris?"}},
		Tools:    []schema.Tool{{Type: "function", Function: schema.Function{Name: "get_weather"}}},
	}, func(c schema.ChunkChoice) error {
		for _, d := range c.Delta.ToolCalls {
			fmt.Println("piece", d.Index, d.Function.Name, d.Function.Arguments)
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Choices[0].FinishReason, resp.ToolCalls()[0].Function.Arguments)
	// Output:
	// piece 0 get_weather {"city":"Paris"}
	// tool_calls {"city":"Paris"}
}
