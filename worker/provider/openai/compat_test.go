package openai_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
)

// rawServer answers every call with status, content type and body, the
// way servers other than OpenAI's (vLLM, llama.cpp, LM Studio, OpenRouter,
// a proxy) sometimes do.
func rawServer(t *testing.T, status int, contentType, body string) *openai.Provider {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	p, err := openai.New(provider.Options{Model: "local", APIBase: ts.URL + "/v1", HTTP: newClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompatibleServerErrors(t *testing.T) {
	t.Parallel()
	const sse = "text/event-stream"
	cases := []struct {
		name, mode  string
		status      int
		contentType string
		body        string
		code        string
		inMessage   string
	}{
		{"proxy html 502", "complete", 502, "text/html", "<html>502 Bad Gateway</html>",
			schema.CodeProviderError, "502 Bad Gateway"},
		{"vllm top-level error", "complete", 400, "application/json",
			`{"object":"error","message":"This model's maximum context length is 2048 tokens. However, you requested 3000 tokens.","type":"BadRequestError","param":null,"code":400}`,
			schema.CodeContextWindowExceeded, "2048"},
		{"llama.cpp context", "complete", 400, "application/json",
			`{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}}`,
			schema.CodeContextWindowExceeded, "available context size"},
		{"lm studio string error", "complete", 400, "application/json", `{"error":"Model unloaded."}`,
			schema.CodeBadRequest, "Model unloaded."},
		{"error object in a 200 reply", "complete", 200, "application/json",
			`{"error":{"message":"upstream failed","code":502}}`, schema.CodeProviderError, "upstream failed"},
		{"reply without choices", "complete", 200, "application/json", `{"id":"x","choices":[]}`,
			schema.CodeProviderError, "no choice"},
		{"malformed reply", "complete", 200, "application/json", `{"id":`, schema.CodeProviderError, "malformed"},
		{"openrouter error chunk", "stream", 200, sse,
			"data: {\"id\":\"g\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n" +
				": OPENROUTER PROCESSING\n\n" +
				"data: {\"id\":\"g\",\"object\":\"chat.completion.chunk\",\"error\":{\"code\":429,\"message\":\"Rate limit exceeded upstream\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n",
			schema.CodeRateLimited, "Rate limit exceeded upstream"},
		{"error event", "stream", 200, sse, "event: error\ndata: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
			schema.CodeProviderError, "boom"},
		{"finish_reason error", "stream", 200, sse,
			"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"error\"}]}\n\ndata: [DONE]\n\n",
			schema.CodeProviderError, "finish_reason"},
		{"malformed chunk", "stream", 200, sse, "data: {not json}\n\n", schema.CodeProviderError, "malformed"},
		{"tool call index out of bounds", "stream", 200, sse,
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1000000000,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
			schema.CodeProviderError, "tool call index 1000000000"},
		{"choice index out of bounds", "stream", 200, sse,
			"data: {\"choices\":[{\"index\":-1,\"delta\":{\"content\":\"x\"}}]}\n\n",
			schema.CodeProviderError, "choice index -1"},
		{"empty stream", "stream", 200, sse, "", schema.CodeConnection, "[DONE]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := rawServer(t, c.status, c.contentType, c.body)
			_, err := modes[c.mode](p, context.Background(), userRequest("x"))
			e := wantError(t, err, c.code)
			if !strings.Contains(e.Message, c.inMessage) {
				t.Errorf("message %q lacks %q", e.Message, c.inMessage)
			}
		})
	}
}

func TestCompatibleServerReplies(t *testing.T) {
	t.Parallel()
	t.Run("stream answered as one JSON reply", func(t *testing.T) {
		t.Parallel()
		p := rawServer(t, 200, "application/json",
			`{"id":"cmpl-1","object":"chat.completion","model":"local","choices":[{"index":0,"message":{"role":"assistant","content":"whole"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
		var deltas []string
		resp, err := p.Stream(context.Background(), userRequest("x"), collect(&deltas))
		if err != nil {
			t.Fatal(err)
		}
		if len(deltas) != 1 || deltas[0] != "whole" || resp.Text() != "whole" || resp.ID != "cmpl-1" {
			t.Errorf("deltas %q, response %+v", deltas, resp)
		}
	})
	t.Run("no id, no model, no usage, aliased finish", func(t *testing.T) {
		t.Parallel()
		p := rawServer(t, 200, "application/json",
			`{"choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},"finish_reason":"max_tokens"}]}`)
		resp, err := p.Complete(context.Background(), userRequest("x"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Model != "local" || resp.Text() != "ab" ||
			resp.Choices[0].FinishReason != schema.FinishLength || resp.Usage != (schema.Usage{}) {
			t.Errorf("response = %+v", resp)
		}
	})
	t.Run("usage on the finish chunk, no usage chunk", func(t *testing.T) {
		t.Parallel()
		p := rawServer(t, 200, "text/event-stream",
			"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"x\"},\"finish_reason\":null}]}\n\n"+
				"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"function_call\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1,\"total_tokens\":99}}\n\n"+
				"data: [DONE]\n\n")
		var deltas []string
		resp, err := p.Stream(context.Background(), userRequest("x"), collect(&deltas))
		if err != nil {
			t.Fatal(err)
		}
		want := schema.Usage{PromptTokens: 4, CompletionTokens: 1, TotalTokens: 5}
		if resp.Usage != want || resp.Choices[0].FinishReason != schema.FinishToolCalls || resp.Text() != "x" {
			t.Errorf("response = %+v", resp)
		}
	})
	t.Run("tool calls without type, arguments as an object", func(t *testing.T) {
		t.Parallel()
		p := rawServer(t, 200, "application/json",
			`{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","function":{"name":"f","arguments":{"a":1}}}]},"finish_reason":"tool_calls"}]}`)
		resp, err := p.Complete(context.Background(), userRequest("x"))
		if err != nil {
			t.Fatal(err)
		}
		want := []schema.ToolCall{{ID: "c1", Type: "function", Function: schema.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}
		if !reflect.DeepEqual(resp.ToolCalls(), want) || resp.Text() != "" {
			t.Errorf("response = %+v", resp.Choices)
		}
	})
	t.Run("streamed call without type gets it on its first piece", func(t *testing.T) {
		t.Parallel()
		p := rawServer(t, 200, "text/event-stream",
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n"+
				"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n"+
				"data: [DONE]\n\n")
		var ps pieces
		resp, err := p.Stream(context.Background(), userRequest("x"), ps.emit)
		if err != nil {
			t.Fatal(err)
		}
		want := []schema.ToolCall{{ID: "c1", Type: "function", Function: schema.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}
		if !reflect.DeepEqual(resp.ToolCalls(), want) || !reflect.DeepEqual(ps.calls(t), want) || resp.Choices[0].FinishReason != schema.FinishToolCalls {
			t.Errorf("response = %+v, pieces %+v", resp.Choices, ps.got)
		}
	})
	t.Run("streamed call whose id and name come in every chunk is emitted with them once", func(t *testing.T) {
		t.Parallel()
		chunk := func(args string) string {
			return "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"" + args + "\"}}]}}]}\n\n"
		}
		p := rawServer(t, 200, "text/event-stream", chunk(`{\"a\"`)+chunk(`:1}`)+"data: [DONE]\n\n")
		var ps pieces
		resp, err := p.Stream(context.Background(), userRequest("x"), ps.emit)
		if err != nil {
			t.Fatal(err)
		}
		want := []schema.ToolCall{{ID: "c1", Type: "function", Function: schema.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}
		if !reflect.DeepEqual(resp.ToolCalls(), want) || !reflect.DeepEqual(ps.calls(t), want) {
			t.Errorf("response = %+v, pieces %+v", resp.Choices, ps.got)
		}
	})
}
