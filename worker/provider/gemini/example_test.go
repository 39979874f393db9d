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

func Example_tools() {
	// The fake model calls get_weather, then answers from its result.
	srv := geminitest.Start(geminitest.Config{Calls: []geminitest.Call{{Name: "get_weather", Args: `{"city":"Oslo"}`}}})
	defer srv.Close()
	httpClient := provider.NewHTTPClient()
	defer httpClient.CloseIdleConnections()
	p, err := gemini.New(provider.Options{Model: "gemini-2.0-flash", APIBase: srv.URL(), APIKey: srv.Key(), HTTP: httpClient})
	if err != nil {
		fmt.Println(err)
		return
	}
	req := &schema.Request{
		Messages: []schema.Message{{Role: schema.RoleUser, Content: "Weather in Oslo?"}},
		Tools: []schema.Tool{{Type: schema.ToolTypeFunction, Function: schema.Function{Name: "get_weather",
			Parameters: schema.RawJSON(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}},
	}
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	call := resp.ToolCalls()[0]
	fmt.Println(resp.Choices[0].FinishReason, call.Function.Name, call.Function.Arguments)

	req.Messages = append(req.Messages, resp.Choices[0].Message,
		schema.Message{Role: schema.RoleTool, ToolCallID: call.ID, Content: `{"temp_c": 4}`})
	resp, err = p.Complete(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Choices[0].FinishReason, resp.Text())
	// Output:
	// tool_calls get_weather {"city":"Oslo"}
	// stop echo: {"temp_c":4}
}
