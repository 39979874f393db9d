package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

func newSim(t *testing.T) *sim.Provider {
	t.Helper()
	p, err := sim.New(sim.Config{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const weatherTool = `"tools":[{"type":"function","function":{"name":"get_weather","description":"weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
}

func TestGateway_ToolLoop_CallThenToolResultThenAnswer(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	e.worker("tier1", "d1", 2, newSim(t))
	var first struct {
		Choices []struct {
			Message      json.RawMessage `json:"message"`
			FinishReason string          `json:"finish_reason"`
		} `json:"choices"`
	}
	decodeJSON(t, e.post(`{"model":"tier1","messages":[{"role":"user","content":"weather in Rome"}],`+weatherTool+`,"tool_choice":"required","parallel_tool_calls":false,"seed":7}`), &first)
	if len(first.Choices) != 1 || first.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("reply %+v: want finish tool_calls", first)
	}
	var msg struct {
		Role      string  `json:"role"`
		Content   *string `json:"content"`
		ToolCalls []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	}
	if err := json.Unmarshal(first.Choices[0].Message, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Content != nil || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Type != "function" || msg.ToolCalls[0].Function.Name != "get_weather" ||
		msg.ToolCalls[0].Function.Arguments != `{"city":"Rome"}` || msg.ToolCalls[0].ID == "" {
		t.Fatalf("message %s: want content null and a get_weather call", first.Choices[0].Message)
	}
	second := `{"model":"tier1","messages":[{"role":"user","content":"weather in Rome"},` + string(first.Choices[0].Message) +
		`,{"role":"tool","tool_call_id":"` + msg.ToolCalls[0].ID + `","content":"sunny"}],` + weatherTool + `}`
	var answer schema.Response
	decodeJSON(t, e.post(second), &answer)
	if answer.Text() != "get_weather returned sunny" || answer.Choices[0].FinishReason != "stop" {
		t.Fatalf("answer %+v", answer.Choices)
	}
	// A tool message answering no call is a 400 naming it.
	bad := `{"model":"tier1","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"y"}]}`
	e2 := wantError(t, e.post(bad), http.StatusBadRequest, schema.TypeInvalidRequest, schema.CodeBadRequest, schema.CodeBadRequest)
	if !strings.Contains(e2.Error.Message, "messages[1].tool_call_id") {
		t.Fatalf("message %q: want messages[1].tool_call_id named", e2.Error.Message)
	}
}

func TestGateway_Stream_ToolCallDeltasAsOpenAIChunks(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	e.worker("tier1", "d1", 2, newSim(t))
	resp := e.post(`{"model":"tier1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"weather in Oslo"}],` + weatherTool + `}`)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	events := sse(t, resp.Body)
	if events[len(events)-1] != "[DONE]" {
		t.Fatalf("last event %q", events[len(events)-1])
	}
	var args, id, name, finish string
	usage := false
	for _, ev := range events[:len(events)-1] {
		var c schema.Chunk
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("%v: %s", err, ev)
		}
		if c.Usage != nil {
			usage = true
		}
		for _, ch := range c.Choices {
			for _, d := range ch.Delta.ToolCalls {
				if d.Index != 0 {
					t.Fatalf("delta of call %d", d.Index)
				}
				id += d.ID
				name += d.Function.Name
				args += d.Function.Arguments
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if id == "" || name != "get_weather" || args != `{"city":"Oslo"}` || finish != "tool_calls" || !usage {
		t.Fatalf("streamed id %q name %q args %q finish %q usage %v", id, name, args, finish, usage)
	}
}

func TestGateway_JSONSchema_AnsweredAsMatchingObject(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	e.worker("tier1", "d1", 2, newSim(t))
	var resp schema.Response
	decodeJSON(t, e.post(`{"model":"tier1","messages":[{"role":"user","content":"a city"}],"response_format":{"type":"json_schema","json_schema":{"name":"city","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"},"pop":{"type":"integer"}},"required":["name","pop"],"additionalProperties":false}}}}`), &resp)
	var obj struct {
		Name string `json:"name"`
		Pop  *int   `json:"pop"`
	}
	if err := json.Unmarshal([]byte(resp.Text()), &obj); err != nil || obj.Name == "" || obj.Pop == nil {
		t.Fatalf("content %q: want the schema's object", resp.Text())
	}
	wantError(t, e.post(`{"model":"tier1","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"c","schema":[1]}}}`),
		http.StatusBadRequest, schema.TypeInvalidRequest, schema.CodeBadRequest, schema.CodeBadRequest)
}

func TestGateway_Embeddings_OpenAIShapeInAndOut(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{Tiers: []string{"emb"}})
	e.worker("emb", "e1", 2, newSim(t), func(c *worker.Config) { c.Embedding = true })
	e.worker("tier1", "d1", 2, newSim(t))
	var out struct {
		Object string `json:"object"`
		Model  string `json:"model"`
		Data   []struct {
			Object    string    `json:"object"`
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}
	decodeJSON(t, e.do(http.MethodPost, "/v1/embeddings", `{"model":"emb","input":["hello world","bye"],"dimensions":5}`), &out)
	if out.Object != "list" || len(out.Data) != 2 || out.Data[1].Index != 1 || out.Data[0].Object != "embedding" || len(out.Data[0].Embedding) != 5 ||
		out.Usage.PromptTokens != 3 || out.Usage.TotalTokens != 3 {
		t.Fatalf("reply %+v", out)
	}
	var b64 struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	decodeJSON(t, e.do(http.MethodPost, "/v1/embeddings", `{"model":"emb","input":"hello world","dimensions":5,"encoding_format":"base64"}`), &b64)
	if raw, err := base64.StdEncoding.DecodeString(b64.Data[0].Embedding); err != nil || len(raw) != 20 {
		t.Fatalf("base64 embedding %q: %v", b64.Data[0].Embedding, err)
	}

	for _, c := range []struct {
		path, body, want string
		status           int
		code             string
	}{
		{"/v1/embeddings", `{"model":"emb"}`, "input: required", 400, schema.CodeBadRequest},
		{"/v1/embeddings", `{"model":"emb","input":[1,2]}`, "token arrays", 400, schema.CodeBadRequest},
		{"/v1/embeddings", `{"model":"emb","input":"x","encoding_format":"int8"}`, "encoding_format", 400, schema.CodeBadRequest},
		{"/v1/embeddings", `{"model":"tier1","input":"x"}`, "serves chat completions", 400, schema.CodeBadRequest},
		{"/v1/embeddings", `{"model":"nope","input":"x"}`, "", 404, "model_not_found"},
		{"/v1/chat/completions", `{"model":"emb","messages":[{"role":"user","content":"hi"}]}`, "serves embeddings", 400, schema.CodeBadRequest},
		{"/v1/chat/completions", `{"model":"emb","input":"x"}`, "/v1/embeddings", 400, schema.CodeBadRequest},
	} {
		typ := schema.TypeInvalidRequest
		got := wantError(t, e.do(http.MethodPost, c.path, c.body), c.status, typ, c.code, "")
		if !strings.Contains(got.Error.Message, c.want) {
			t.Errorf("%s %s: message %q, want %q", c.path, c.body, got.Error.Message, c.want)
		}
	}
}
