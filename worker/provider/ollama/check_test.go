package ollama_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

func TestCheckModelFindsPulledModel(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Models: []string{"qwen2.5-coder:14b", "llama3", "hf.co/org/Model-GGUF:Q4_K_M"}})
	for _, model := range []string{
		"qwen2.5-coder:14b",
		"llama3",        // no tag means :latest
		"llama3:latest", // listed as llama3:latest
		"Llama3",        // names compare without case
		"library/llama3",
		"registry.ollama.ai/library/qwen2.5-coder:14b",
		"hf.co/org/model-gguf:q4_k_m",
	} {
		p := newProvider(t, fake.URL(), func(o *provider.Options) { o.Model = model })
		if err := p.CheckModel(context.Background()); err != nil {
			t.Errorf("CheckModel(%q): %v", model, err)
		}
	}
	for _, r := range fake.Requests() {
		if r.Method != http.MethodGet || r.Path != "/api/tags" {
			t.Errorf("request %s %s, want GET /api/tags", r.Method, r.Path)
		}
	}
}

func TestCheckModelNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Models: []string{"mistral:7b", "llama3"}})
	for _, model := range []string{"qwen2.5-coder:14b", "llama3:8b", "mistral"} {
		p := newProvider(t, fake.URL(), func(o *provider.Options) { o.Model = model })
		err := p.CheckModel(context.Background())
		e := wantError(t, err, schema.CodeNotFound)
		for _, want := range []string{`"` + model + `"`, fake.URL(), "it has: llama3:latest, mistral:7b"} {
			if !strings.Contains(e.Message, want) {
				t.Errorf("CheckModel(%q) message %q does not contain %q", model, e.Message, want)
			}
		}
	}
}

func TestCheckModelOnEmptyHost(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Models: []string{}})
	p := newProvider(t, fake.URL())
	e := wantError(t, p.CheckModel(context.Background()), schema.CodeNotFound)
	if !strings.Contains(e.Message, "it has no models") {
		t.Errorf("message %q does not say the host has no models", e.Message)
	}
}

func TestCheckModelHTTPErrors(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Key: "k"})
	p := newProvider(t, fake.URL())
	wantError(t, p.CheckModel(context.Background()), schema.CodeAuthentication)

	wrongBase := newProvider(t, fake.URL()+"/nothing-here", func(o *provider.Options) { o.APIKey = "k" })
	e := wantError(t, wrongBase.CheckModel(context.Background()), schema.CodeNotFound)
	if !strings.Contains(e.Message, "/api/tags") {
		t.Errorf("message %q does not say what was asked", e.Message)
	}
}
