package azure_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/azure"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

func TestEmbed_SendsAzurePathVersionAndAPIKey(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Key: testKey}, nil)
	req := &schema.Request{Input: schema.InputList{"first text", "second"}, Dimensions: intp(16)}
	resp, err := p.Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 2 || resp.Usage.PromptTokens != 3 {
		t.Fatalf("response = %+v", resp)
	}
	for i, text := range req.Input {
		if want := openaitest.EmbeddingVector(text, openaitest.DefaultEmbeddingDimensions, 16); !reflect.DeepEqual(resp.Data[i].Embedding.Floats, want) {
			t.Errorf("data[%d] is not the vector of %q", i, text)
		}
	}
	r := srv.Requests()[0]
	if r.Path != openaitest.AzureEmbeddingsPath(deployment) || r.Header.Get("Api-Key") != testKey || r.Header.Get("Authorization") != "" {
		t.Errorf("sent %s with api-key %q authorization %q", r.Path, r.Header.Get("Api-Key"), r.Header.Get("Authorization"))
	}
	if r.Body["dimensions"] != 16.0 || r.Body["encoding_format"] != "float" {
		t.Errorf("body %s", r.Raw)
	}
}

func TestEmbed_WrongKeyAndUnknownDeployment(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mod  func(*provider.Options, *azure.Options)
		code string
		in   string
	}{
		{"wrong key", func(o *provider.Options, _ *azure.Options) { o.APIKey = "azure-other-key-000000" }, schema.CodeAuthentication, "invalid subscription key"},
		{"unknown deployment", func(o *provider.Options, _ *azure.Options) { o.Model = "no-such-deployment" }, schema.CodeNotFound, "DeploymentNotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, _ := setup(t, openaitest.Config{Key: testKey}, c.mod)
			_, err := p.Embed(context.Background(), &schema.Request{Input: schema.InputList{"x"}})
			if e := wantError(t, err, c.code); !strings.Contains(e.Message, c.in) || strings.Contains(e.Message, testKey) {
				t.Errorf("message %q", e.Message)
			}
		})
	}
}

func TestEmbeddingsURL_BuiltLikeTheChatURL(t *testing.T) {
	t.Parallel()
	got, err := azure.EmbeddingsURL("https://res.openai.azure.com/", "emb", "")
	if err != nil || got != "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version="+azure.DefaultAPIVersion {
		t.Errorf("EmbeddingsURL = %q, %v", got, err)
	}
}

func TestStream_ToolCallsThroughAzure(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Key: testKey, Answers: []openaitest.Answer{{ToolCalls: []openaitest.ToolCall{
		{ID: "call_1", Name: "lookup", Arguments: `{"q":"llmq on azure"}`}}}}}, nil)
	req := userRequest("look it up")
	req.Tools = []schema.Tool{{Type: "function", Function: schema.Function{Name: "lookup", Parameters: schema.RawJSON(`{"type":"object"}`)}}}
	req.ToolChoice = &schema.ToolChoice{Mode: schema.ToolChoiceRequired}
	var args strings.Builder
	resp, err := p.Stream(context.Background(), req, func(c schema.ChunkChoice) error {
		for _, d := range c.Delta.ToolCalls {
			args.WriteString(d.Function.Arguments)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []schema.ToolCall{{ID: "call_1", Type: "function", Function: schema.FunctionCall{Name: "lookup", Arguments: `{"q":"llmq on azure"}`}}}
	if !reflect.DeepEqual(resp.ToolCalls(), want) || args.String() != want[0].Function.Arguments || resp.Choices[0].FinishReason != schema.FinishToolCalls {
		t.Errorf("response %+v, streamed arguments %q", resp.Choices, args.String())
	}
	if srv.Requests()[0].Body["tool_choice"] != "required" {
		t.Errorf("body %s", srv.Requests()[0].Raw)
	}
}

func intp(n int) *int { return &n }
