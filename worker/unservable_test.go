package worker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/config/family"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

func TestUnservable_ImageGenerationAndEmbeddingsWithoutEmbedderAreClearErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, model, mode, want string
	}{
		{"openai-dall-e-3", "dall-e-3", "", "image generation is not supported by llmq (it serves chat completions and embeddings)"},
		{"dall-e-2", "azure/", "", "image generation is not supported by llmq (it serves chat completions and embeddings)"},
		{"img", "openai/gpt-image-1", "", "image generation is not supported by llmq"},
		{"img", "openai/my-image-model", "image_generation", "image generation is not supported by llmq"},
		{"ada", "azure/azure-embedding-model", "embedding", ""},
		{"emb", "ollama/nomic-embed-text", "embedding", ""},
		{"claude-emb", "anthropic/claude-sonnet-4", "embedding", "llmq serves embeddings on ollama, gemini, OpenAI-compatible, azure and sim deployments, not on anthropic ones"},
		{"cohere-emb", "cohere/embed-english-v3.0", "embedding", "not on cohere ones"},
		{"rr", "cohere/rerank-english-v3.0", "rerank", "reranking is not served"},
		{"chat", "openai/gpt-4o", "chat", ""},
		{"chat", "openai/gpt-4o", "", ""},
		{"dall-e-2", "openai/gpt-4o", "", ""}, // the model's own name wins over model_name
		{"x", "vertex_ai/gemini-2.5-flash-image", "", ""},
	} {
		d := &config.Deployment{ModelName: c.name, LitellmParams: config.LitellmParams{Model: c.model}, ModelInfo: config.ModelInfo{Mode: c.mode}}
		err := worker.Unservable(d)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s (%s, mode %q): %v, want servable", c.name, c.model, c.mode, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s (%s, mode %q): err %v, want %q", c.name, c.model, c.mode, err, c.want)
			continue
		}
		if !errors.Is(err, family.ErrUnsupported) {
			t.Errorf("%s: %v does not wrap family.ErrUnsupported (up --skip-unsupported would not skip it)", c.name, err)
		}
		if _, ferr := worker.FromDeployment(d, nil); ferr == nil || !strings.Contains(ferr.Error(), c.want) {
			t.Errorf("%s: FromDeployment err %v, want %q", c.name, ferr, c.want)
		}
	}
}

func TestFromDeployment_EmbeddingMode_MakesAnEmbeddingWorkerWithLimitsAndDropParams(t *testing.T) {
	t.Parallel()
	yes := true
	d := &config.Deployment{ModelName: "emb", LitellmParams: config.LitellmParams{Model: "sim/e", DropParams: &yes},
		ModelInfo: config.ModelInfo{Mode: "embedding"}, MaxImageBytes: 1234}
	cfg, err := worker.FromDeployment(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Embedding || cfg.Limits.MaxImageBytes != 1234 {
		t.Fatalf("Embedding %v, Limits %+v: want an embedding worker with max image 1234", cfg.Embedding, cfg.Limits)
	}
	if _, ok := cfg.Provider.(provider.Embedder); !ok {
		t.Fatalf("provider %T cannot embed", cfg.Provider)
	}
	d.ModelInfo.Mode = ""
	if cfg, err = worker.FromDeployment(d, nil); err != nil || cfg.Embedding {
		t.Fatalf("chat deployment: Embedding %v, err %v", cfg.Embedding, err)
	}
}
