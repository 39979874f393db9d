package gemini_test

import (
	"context"
	"fmt"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

func Example() {
	// A fake Gemini API; in production APIBase is left empty (or set to the
	// host root of a proxy) and APIKey holds the real key.
	srv := geminitest.Start(geminitest.Config{Reply: "Bonjour !"})
	defer srv.Close()
	httpClient := provider.NewHTTPClient()
	defer httpClient.CloseIdleConnections()

	p, err := gemini.New(provider.Options{
		Model:   "gemini-2.0-flash",
		APIBase: srv.URL(),
		APIKey:  srv.Key(),
		HTTP:    httpClient,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{
		{Role: schema.RoleSystem, Content: "Answer in French."},
		{Role: schema.RoleUser, Content: "Say hello."},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Text(), resp.Choices[0].FinishReason, resp.Usage.TotalTokens)
	// Output: Bonjour ! stop 7
}
