package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/worker"
)

func TestParseModel_MapsLiteLLMPrefixesToProviders(t *testing.T) {
	t.Parallel()
	cases := []struct {
		model, provider, name, prefix string
	}{
		{"ollama/qwen2.5-coder:14b", worker.ProviderOllama, "qwen2.5-coder:14b", "ollama"},
		{"ollama_chat/llama3.1:8b", worker.ProviderOllama, "llama3.1:8b", "ollama_chat"},
		{"gemini/gemini-1.5-flash", worker.ProviderGemini, "gemini-1.5-flash", "gemini"},
		{"anthropic/claude-3-5-sonnet-latest", worker.ProviderAnthropic, "claude-3-5-sonnet-latest", "anthropic"},
		{"claude-3-haiku-20240307", worker.ProviderAnthropic, "claude-3-haiku-20240307", "anthropic"},
		{"openai/gpt-4o-mini", worker.ProviderOpenAI, "gpt-4o-mini", "openai"},
		{"hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", worker.ProviderOpenAI, "meta-llama/Llama-3.1-8B-Instruct", "hosted_vllm"},
		{"groq/llama-3.1-70b", worker.ProviderOpenAI, "llama-3.1-70b", "groq"},
		{"gpt-4o", worker.ProviderOpenAI, "gpt-4o", "openai"},
		{"o1-mini", worker.ProviderOpenAI, "o1-mini", "openai"},
		{"sim/fast", worker.ProviderSim, "fast", "sim"},
		{"azure/gpt4o-prod", worker.ProviderAzure, "gpt4o-prod", "azure"},
		{"cohere/command-r-plus", worker.ProviderCohere, "command-r-plus", "cohere"},
		{"cohere_chat/command-r", worker.ProviderCohere, "command-r", "cohere_chat"},
		{"mistral/mistral-small", worker.ProviderOpenAI, "mistral-small", "mistral"},
		{"huggingface/together/deepseek-ai/DeepSeek-R1", worker.ProviderOpenAI, "together/deepseek-ai/DeepSeek-R1", "huggingface"},
	}
	for _, c := range cases {
		p, name, prefix, err := worker.ParseModel(c.model)
		if err != nil {
			t.Errorf("%s: %v", c.model, err)
			continue
		}
		if p != c.provider || name != c.name || prefix != c.prefix {
			t.Errorf("%s: (%q, %q, %q), want (%q, %q, %q)", c.model, p, name, prefix, c.provider, c.name, c.prefix)
		}
	}
}

func TestParseModel_RejectsUnknownOrMissingProvider(t *testing.T) {
	t.Parallel()
	cases := []struct {
		model string
		want  []string // each must appear in the error
	}{
		{"acme/claude-3", []string{`"acme"`, "unknown provider prefix", "ollama", "cohere", "azure", "mistral"}},
		{"bedrock/claude-3", []string{`"bedrock"`, "AWS Bedrock", "not supported by llmq yet"}},
		{"mistralai/mistral-7b-instruct", []string{`unknown provider prefix "mistralai"`, `did you mean "mistral/mistral-7b-instruct"?`,
			`"openrouter/mistralai/mistral-7b-instruct"`}},
		{"antropic/claude-3", []string{`did you mean "anthropic/claude-3"?`}},
		{"publishers/google/models/gemini-embedding-001", []string{`"publishers"`, "Vertex AI", "not supported by llmq yet"}},
		{"model", []string{`"model"`, "names no provider", "ollama/model"}},
		{"ollama/", []string{"no model name"}},
	}
	for _, c := range cases {
		_, _, _, err := worker.ParseModel(c.model)
		if err == nil {
			t.Errorf("%s: no error", c.model)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %s", c.model, err, w)
			}
		}
	}
}

// deployment parses a config of one deployment (litellm_params given as
// YAML lines) plus extra top-level YAML.
func parseDeployment(t *testing.T, params, extra string, env map[string]string) (*config.Deployment, *config.RouterSettings) {
	t.Helper()
	var b strings.Builder
	b.WriteString("model_list:\n  - model_name: tier1\n    litellm_params:\n")
	for _, line := range strings.Split(strings.TrimSpace(params), "\n") {
		b.WriteString("      " + line + "\n")
	}
	b.WriteString(extra)
	cfg, err := config.Parse([]byte(b.String()), func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	return &cfg.ModelList[0], &cfg.RouterSettings
}

func fromDeployment(t *testing.T, params, extra string) worker.Config {
	t.Helper()
	d, rs := parseDeployment(t, params, extra, nil)
	cfg, err := worker.FromDeployment(d, rs)
	if err != nil {
		t.Fatalf("FromDeployment: %v", err)
	}
	return cfg
}

func TestFromDeployment_BuildsProviderAndConcurrencyOfModel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, params string
		typ          string
		provider     string
		model        string
		concurrency  int
		host         string
	}{
		{"ollama", "model: ollama/qwen2.5-coder:14b\napi_base: http://gpu1:11434", "*ollama.Provider", "ollama", "qwen2.5-coder:14b", 4, "http://gpu1:11434"},
		{"ollama max_parallel_requests", "model: ollama_chat/llama3\napi_base: http://gpu1:11434\nmax_parallel_requests: 7", "*ollama.Provider", "ollama", "llama3", 7, "http://gpu1:11434"},
		{"sim", "model: sim/fast\nsim:\n  parallel: 3", "*sim.Provider", "sim", "fast", 3, "simulator"},
		{"sim default slots", "model: sim/fast", "*sim.Provider", "sim", "fast", 8, "simulator"},
		{"gemini", "model: gemini/gemini-1.5-flash\napi_key: k", "*gemini.Provider", "gemini", "gemini-1.5-flash", 32, "https://generativelanguage.googleapis.com"},
		{"anthropic", "model: anthropic/claude-3-5-sonnet-latest\napi_key: k", "*anthropic.Provider", "anthropic", "claude-3-5-sonnet-latest", 32, "https://api.anthropic.com"},
		{"bare claude", "model: claude-3-haiku-20240307\napi_key: k", "*anthropic.Provider", "anthropic", "claude-3-haiku-20240307", 32, "https://api.anthropic.com"},
		{"openai", "model: openai/gpt-4o-mini\napi_key: k", "*openai.Provider", "openai", "gpt-4o-mini", 32, "https://api.openai.com"},
		{"bare gpt", "model: gpt-4o\napi_key: k", "*openai.Provider", "openai", "gpt-4o", 32, "https://api.openai.com"},
		{"groq", "model: groq/llama-3.1-8b-instant\napi_key: k", "*openai.Provider", "openai", "llama-3.1-8b-instant", 32, "https://api.groq.com"},
		{"azure", "model: azure/gpt4o\napi_key: k\napi_base: https://res.openai.azure.com", "*openai.Provider", "azure", "gpt4o", 32, "https://res.openai.azure.com"},
		{"cohere", "model: cohere/command-r\napi_key: k", "*cohere.Provider", "cohere", "command-r", 32, "https://api.cohere.com"},
		{"hosted_vllm", "model: hosted_vllm/meta-llama/Llama-3.1-8B\napi_base: http://vllm:8000/v1", "*openai.Provider", "openai", "meta-llama/Llama-3.1-8B", 32, "http://vllm:8000"},
		{"cloud max_parallel_requests", "model: gemini/gemini-1.5-pro\napi_key: k\nmax_parallel_requests: 2", "*gemini.Provider", "gemini", "gemini-1.5-pro", 2, "https://generativelanguage.googleapis.com"},
	}
	for _, c := range cases {
		cfg := fromDeployment(t, c.params, "")
		if got := fmt.Sprintf("%T", cfg.Provider); got != c.typ {
			t.Errorf("%s: provider %s, want %s", c.name, got, c.typ)
		}
		if cfg.ProviderName != c.provider || cfg.Model != c.model || cfg.Concurrency != c.concurrency || cfg.Host != c.host {
			t.Errorf("%s: provider %q model %q concurrency %d host %q; want %q %q %d %q", c.name,
				cfg.ProviderName, cfg.Model, cfg.Concurrency, cfg.Host, c.provider, c.model, c.concurrency, c.host)
		}
		if cfg.Tier != "tier1" || cfg.Deployment == "" {
			t.Errorf("%s: tier %q deployment %q", c.name, cfg.Tier, cfg.Deployment)
		}
	}
}

func TestFromDeployment_HostHidesCredentials(t *testing.T) {
	t.Parallel()
	cfg := fromDeployment(t, "model: hosted_vllm/m\napi_base: https://user:secret@vllm.example:8443/v1", "")
	if cfg.Host != "https://vllm.example:8443" {
		t.Fatalf("host %q, want scheme and host only", cfg.Host)
	}
}

func TestFromDeployment_CarriesTierIDOrderAndMaxTokens(t *testing.T) {
	t.Parallel()
	cfg := fromDeployment(t, "model: sim/x\norder: 2\nmax_tokens: 100", "    model_info:\n      id: dep-x\n")
	if cfg.Tier != "tier1" || cfg.Deployment != "dep-x" || cfg.Order != 2 || cfg.MaxTokens != 100 {
		t.Fatalf("tier %q deployment %q order %d max tokens %d", cfg.Tier, cfg.Deployment, cfg.Order, cfg.MaxTokens)
	}
}

func TestFromDeployment_WeightIsWeightElseRPMElseTPM(t *testing.T) {
	t.Parallel()
	cases := []struct {
		params string
		want   float64
	}{
		{"weight: 3\nrpm: 100\ntpm: 1000", 3},
		{"rpm: 100\ntpm: 1000", 100},
		{"tpm: 1000", 1000},
		{"", 0},
	}
	for _, c := range cases {
		cfg := fromDeployment(t, "model: sim/x\n"+c.params, "")
		if cfg.Weight != c.want {
			t.Errorf("%q: weight %v, want %v", c.params, cfg.Weight, c.want)
		}
	}
}

func TestFromDeployment_TimeoutsFromLitellmParamsThenRouterSettings(t *testing.T) {
	t.Parallel()
	router := "router_settings:\n  timeout: 10\n  stream_timeout: 20\n"
	cases := []struct {
		name, params, extra string
		timeout, stream     time.Duration
	}{
		{"params win", "model: sim/x\ntimeout: 30\nstream_timeout: 45s", router, 30 * time.Second, 45 * time.Second},
		{"router settings", "model: sim/x", router, 10 * time.Second, 20 * time.Second},
		{"litellm_settings request_timeout", "model: sim/x", "litellm_settings:\n  request_timeout: 15\n", 15 * time.Second, 0},
		{"none: the worker's default", "model: sim/x", "", 0, 0},
	}
	for _, c := range cases {
		cfg := fromDeployment(t, c.params, c.extra)
		if cfg.Timeout != c.timeout || cfg.StreamTimeout != c.stream {
			t.Errorf("%s: timeout %v stream %v, want %v %v", c.name, cfg.Timeout, cfg.StreamTimeout, c.timeout, c.stream)
		}
	}
}

func TestFromDeployment_HostedVLLMWithoutAPIBase_Errors(t *testing.T) {
	t.Parallel()
	d, rs := parseDeployment(t, "model: hosted_vllm/m", "", nil)
	_, err := worker.FromDeployment(d, rs)
	if err == nil || !strings.Contains(err.Error(), "api_base") || !strings.Contains(err.Error(), "hosted_vllm") {
		t.Fatalf("err %v, want one asking for api_base", err)
	}
}

func TestFromDeployment_UnknownPrefix_ErrorNamesIt(t *testing.T) {
	t.Parallel()
	d, rs := parseDeployment(t, "model: bedrock/claude", "", nil)
	_, err := worker.FromDeployment(d, rs)
	if err == nil || !strings.Contains(err.Error(), `"bedrock"`) || !strings.Contains(err.Error(), "tier1") {
		t.Fatalf("err %v, want one naming the prefix and the deployment", err)
	}
}

func TestFromDeployment_PlaceholderAPIBase_ErrorSaysFillItIn(t *testing.T) {
	t.Parallel()
	d, rs := parseDeployment(t, "model: azure/gpt-4o\napi_base: <your-azure-endpoint>\napi_key: k", "", nil)
	_, err := worker.FromDeployment(d, rs)
	if err == nil || !strings.Contains(err.Error(), `api_base "<your-azure-endpoint>" is a placeholder`) {
		t.Fatalf("err %v, want one saying the api_base is a placeholder", err)
	}
}

func TestFromDeployment_UnresolvedEnvVar_ErrorNamesVariable(t *testing.T) {
	t.Parallel()
	d, rs := parseDeployment(t, "model: gemini/gemini-1.5-flash\napi_key: os.environ/LLMQ_TEST_GEMINI_KEY", "", nil)
	_, err := worker.FromDeployment(d, rs)
	if err == nil || !strings.Contains(err.Error(), "LLMQ_TEST_GEMINI_KEY") {
		t.Fatalf("err %v, want one naming LLMQ_TEST_GEMINI_KEY", err)
	}
	// Set, the same deployment builds.
	d, rs = parseDeployment(t, "model: gemini/gemini-1.5-flash\napi_key: os.environ/LLMQ_TEST_GEMINI_KEY", "", map[string]string{"LLMQ_TEST_GEMINI_KEY": "k"})
	if _, err := worker.FromDeployment(d, rs); err != nil {
		t.Fatal(err)
	}
}

func TestFromDeployment_AdapterValidationFails(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"gemini without key":    "model: gemini/gemini-1.5-flash",
		"openai without key":    "model: openai/gpt-4o",
		"ollama api_base /v1":   "model: ollama/llama3\napi_base: http://gpu1:11434/v1",
		"sim error_rate > 1":    "model: sim/x\nsim:\n  error_rate: 1.5",
		"anthropic without key": "model: anthropic/claude-3-5-sonnet-latest",
	}
	for name, params := range cases {
		d, rs := parseDeployment(t, params, "", nil)
		if _, err := worker.FromDeployment(d, rs); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "tier1") {
			t.Errorf("%s: error %q does not name the deployment", name, err)
		}
	}
}

func TestFromDeployment_SimConfigShapesTheSimulator(t *testing.T) {
	t.Parallel()
	cfg := fromDeployment(t, "model: sim/x\nsim:\n  tokens: 3\n  error_rate: 1", "")
	e := setup(t)
	cfg.Conn = e.srv.Connect("worker")
	cfg.Subjects = e.subjects
	cfg.Logger = quiet()
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	se := decodeError(t, e.request(job(t, w, ask("x"))))
	if se.Code != "provider_error" || se.ProviderStatus != 500 {
		t.Fatalf("error %+v, want the sim's provider_error (error_rate 1)", se)
	}
}
