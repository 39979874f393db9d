package ollama_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

const embedModel = "nomic-embed-text"

func embedJob(texts ...string) *schema.Request {
	return &schema.Request{Input: schema.InputList(texts)}
}

// lastEmbed returns the only embed request the fake received.
func lastEmbed(t *testing.T, fake *ollamatest.Server) *ollamatest.EmbedRequest {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/api/embed" || reqs[0].Embed == nil {
		t.Fatalf("fake received %+v, want one embed", reqs)
	}
	return reqs[0].Embed
}

func TestProvider_Embed_BatchInOrderWithUsage(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Models: []string{}, EmbedModels: []string{embedModel}, EmbedDims: 16})
	p := newProviderFor(t, fake.URL(), embedModel)

	texts := []string{"the quick brown fox", "jumps", "over the lazy dog"}
	resp, err := p.Embed(context.Background(), embedJob(texts...))
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if resp.Object != schema.ObjectList || resp.Model != embedModel || len(resp.Data) != 3 {
		t.Fatalf("response = %+v", resp)
	}
	for i, d := range resp.Data {
		want := ollamatest.Vector(texts[i], 16, 0)
		if d.Object != schema.ObjectEmbedding || d.Index != i || !reflect.DeepEqual(d.Embedding.Floats, want) {
			t.Errorf("data[%d] = %+v, want the vector of %q", i, d, texts[i])
		}
	}
	// prompt_eval_count: 4 + 1 + 4 words.
	if resp.Usage != (schema.Usage{PromptTokens: 9, TotalTokens: 9}) {
		t.Errorf("usage = %+v, want 9 prompt tokens", resp.Usage)
	}
	body := lastEmbed(t, fake)
	var sent []string
	if err := json.Unmarshal(body.Input, &sent); err != nil || !reflect.DeepEqual(sent, texts) {
		t.Errorf("input sent = %s, want the texts in order", body.Input)
	}
	if body.Model != embedModel || body.Dimensions != 0 || body.Truncate != nil {
		t.Errorf("body = %+v", body)
	}
}

func TestProvider_Embed_DimensionsPassedOn(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{EmbedDims: 16})
	p := newProvider(t, fake.URL())
	req := embedJob("hello")
	req.Dimensions = ptr(4)
	resp, err := p.Embed(context.Background(), req)
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	v := resp.Data[0].Embedding.Floats
	var norm float64
	for _, f := range v {
		norm += float64(f) * float64(f)
	}
	if len(v) != 4 || math.Abs(norm-1) > 1e-5 {
		t.Errorf("vector %v (norm² %g), want 4 numbers of length 1", v, norm)
	}
	if got := lastEmbed(t, fake).Dimensions; got != 4 {
		t.Errorf("dimensions sent = %d, want 4", got)
	}
}

func TestProvider_Embed_SameTextSameVector(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	p := newProvider(t, fake.URL())
	resp, err := p.Embed(context.Background(), embedJob("a", "b", "a"))
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	d := resp.Data
	if !reflect.DeepEqual(d[0].Embedding, d[2].Embedding) || reflect.DeepEqual(d[0].Embedding, d[1].Embedding) {
		t.Errorf("vectors %v, want a's twice and b's different", d)
	}
}

func TestProvider_Embed_ErrorsTyped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   ollamatest.Config
		model string
		req   *schema.Request
		code  string
		want  string
	}{
		{"model not pulled", ollamatest.Config{}, "missing-model", embedJob("x"), schema.CodeNotFound, "not found"},
		{"no input", ollamatest.Config{}, ollamatest.DefaultModel, &schema.Request{}, schema.CodeBadRequest, "input"},
		{"messages too", ollamatest.Config{}, ollamatest.DefaultModel,
			&schema.Request{Input: schema.InputList{"x"}, Messages: []schema.Message{user("x")}}, schema.CodeBadRequest, "input"},
		{"bad dimensions", ollamatest.Config{}, ollamatest.DefaultModel,
			&schema.Request{Input: schema.InputList{"x"}, Dimensions: ptr(0)}, schema.CodeBadRequest, "dimensions"},
		{"queue full", ollamatest.Config{Fail: ollamatest.Busy()}, ollamatest.DefaultModel, embedJob("x"), schema.CodeRateLimited, "busy"},
		{"runner crashed", ollamatest.Config{Fail: &ollamatest.Failure{Status: http.StatusInternalServerError, Message: "llama runner process has terminated"}},
			ollamatest.DefaultModel, embedJob("x"), schema.CodeProviderError, "runner"},
	} {
		fake := ollamatest.NewServer(t, tc.cfg)
		_, err := newProviderFor(t, fake.URL(), tc.model).Embed(context.Background(), tc.req)
		e := wantError(t, err, tc.code)
		if !strings.HasPrefix(e.Message, "ollama: ") || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: error %q, want it to say %q", tc.name, e.Message, tc.want)
		}
	}
}
