package openai_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

func embedRequest(texts ...string) *schema.Request {
	return &schema.Request{Input: schema.InputList(texts)}
}

func TestProvider_Embed_VectorsInInputOrderWithUsage(t *testing.T) {
	t.Parallel()
	for _, shuffled := range []bool{false, true} {
		t.Run(map[bool]string{false: "in order", true: "answered out of order"}[shuffled], func(t *testing.T) {
			t.Parallel()
			p, srv := setup(t, openaitest.Config{Key: testKey, Model: testModel, ShuffleEmbeddings: shuffled}, nil)
			texts := []string{"the first text", "second", "a third one here"}
			resp, err := p.Embed(context.Background(), embedRequest(texts...))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Object != schema.ObjectList || resp.Model != testModel || len(resp.Data) != 3 {
				t.Fatalf("response = %+v", resp)
			}
			for i, d := range resp.Data {
				want := openaitest.EmbeddingVector(texts[i], openaitest.DefaultEmbeddingDimensions, openaitest.DefaultEmbeddingDimensions)
				if d.Index != i || d.Object != schema.ObjectEmbedding || !reflect.DeepEqual(d.Embedding.Floats, want) {
					t.Errorf("data[%d] = index %d, %d floats: not the vector of %q", i, d.Index, len(d.Embedding.Floats), texts[i])
				}
			}
			if resp.Usage.PromptTokens != 3+1+4 || resp.Usage.TotalTokens != 8 {
				t.Errorf("usage = %+v", resp.Usage)
			}
			got := srv.Requests()[0]
			want := map[string]any{"model": testModel, "input": []any{"the first text", "second", "a third one here"}, "encoding_format": "float"}
			if got.Path != openaitest.EmbeddingsPath || !reflect.DeepEqual(got.Body, want) || got.Header.Get("Authorization") != "Bearer "+testKey {
				t.Errorf("sent %s %s %v", got.Path, got.Raw, got.Header)
			}
		})
	}
}

func TestProvider_Embed_DimensionsSentAndHonoured_Base64AskedAsFloat(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{}, nil)
	req := embedRequest("shorten me")
	req.Dimensions, req.EncodingFormat = intp(8), schema.EncodingBase64
	resp, err := p.Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := openaitest.EmbeddingVector("shorten me", openaitest.DefaultEmbeddingDimensions, 8)
	if len(resp.Data) != 1 || !reflect.DeepEqual(resp.Data[0].Embedding.Floats, want) {
		t.Errorf("data = %+v, want %v", resp.Data, want)
	}
	if b := srv.Requests()[0].Body; b["dimensions"] != 8.0 || b["encoding_format"] != "float" {
		t.Errorf("body %s", srv.Requests()[0].Raw)
	}
}

func TestProvider_Embed_Errors(t *testing.T) {
	t.Parallel()
	t.Run("dimensions above the model's are the fake's 400, a bad_request naming them", func(t *testing.T) {
		t.Parallel()
		p, _ := setup(t, openaitest.Config{}, nil)
		req := embedRequest("x")
		req.Dimensions = intp(openaitest.DefaultEmbeddingDimensions + 1)
		_, err := p.Embed(context.Background(), req)
		if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "dimensions") {
			t.Errorf("message %q", e.Message)
		}
	})
	t.Run("wrong key is authentication", func(t *testing.T) {
		t.Parallel()
		p, _ := setup(t, openaitest.Config{Key: testKey}, func(o *provider.Options) { o.APIKey = "sk-wrong-000000000000" })
		_, err := p.Embed(context.Background(), embedRequest("x"))
		wantError(t, err, schema.CodeAuthentication)
	})
	t.Run("a chat job is refused", func(t *testing.T) {
		t.Parallel()
		p, srv := setup(t, openaitest.Config{}, nil)
		_, err := p.Embed(context.Background(), userRequest("x"))
		if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "input") || len(srv.Requests()) != 0 {
			t.Errorf("message %q, %d calls", e.Message, len(srv.Requests()))
		}
	})
	t.Run("an endpoint without embeddings refuses", func(t *testing.T) {
		t.Parallel()
		p, err := openai.NewEndpoint(provider.Options{Model: "m"}, openai.Endpoint{Name: "svc", URL: "http://127.0.0.1:1/chat"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Embed(context.Background(), embedRequest("x"))
		if e := wantError(t, err, schema.CodeBadRequest); !strings.HasPrefix(e.Message, "svc: ") {
			t.Errorf("message %q", e.Message)
		}
	})
}

func TestProvider_Embed_RepliesThatDoNotMatchTheInputsAreProviderErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"one vector short":  `{"object":"list","data":[{"index":0,"embedding":[0.1]}],"model":"m"}`,
		"repeated index":    `{"object":"list","data":[{"index":0,"embedding":[0.1]},{"index":0,"embedding":[0.2]}],"model":"m"}`,
		"index past inputs": `{"object":"list","data":[{"index":0,"embedding":[0.1]},{"index":7,"embedding":[0.2]}],"model":"m"}`,
		"malformed":         `{"data":[`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := rawServer(t, 200, "application/json", body)
			_, err := p.Embed(context.Background(), embedRequest("a", "b"))
			wantError(t, err, schema.CodeProviderError)
		})
	}
}
