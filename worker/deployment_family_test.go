package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/config/family"
	"github.com/llmq/llmq/schema"
)

// recorder is an HTTP client that records the one call an adapter makes
// and answers it with a 500, so no request leaves the process.
type recorder struct {
	mu   sync.Mutex
	req  *http.Request
	body map[string]any
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.req = req
	_ = json.Unmarshal(b, &r.body)
	r.mu.Unlock()
	return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{},
		Body: io.NopCloser(bytes.NewReader(nil)), Request: req}, nil
}

// familyCase is what a deployment of one family must send: the URL, one
// credential header and the model in the body ("" for adapters that put
// it in the URL).
type familyCase struct {
	params string            // litellm_params lines
	env    map[string]string // the environment
	url    string
	header string // "Name: value"; "Authorization:" for none
	model  string
}

// The expectations are written out, not read from the table, so that the
// test checks the table against what LiteLLM's source and the providers'
// documentation say.
var familyCases = map[string]familyCase{
	"openai": {"model: openai/gpt-4o-mini", map[string]string{"OPENAI_API_KEY": "k-openai"},
		"https://api.openai.com/v1/chat/completions", "Authorization: Bearer k-openai", "gpt-4o-mini"},
	"mistral": {"model: mistral/mistral-large-latest", map[string]string{"MISTRAL_API_KEY": "k-mistral"},
		"https://api.mistral.ai/v1/chat/completions", "Authorization: Bearer k-mistral", "mistral-large-latest"},
	"codestral": {"model: codestral/codestral-latest", map[string]string{"CODESTRAL_API_KEY": "k-codestral"},
		"https://codestral.mistral.ai/v1/chat/completions", "Authorization: Bearer k-codestral", "codestral-latest"},
	"deepseek": {"model: deepseek/deepseek-chat", map[string]string{"DEEPSEEK_API_KEY": "k-deepseek"},
		"https://api.deepseek.com/v1/chat/completions", "Authorization: Bearer k-deepseek", "deepseek-chat"},
	"together_ai": {"model: together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", map[string]string{"TOGETHERAI_API_KEY": "k-together"},
		"https://api.together.xyz/v1/chat/completions", "Authorization: Bearer k-together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"},
	"fireworks_ai": {"model: fireworks_ai/llama-v3p1-8b-instruct", map[string]string{"FIREWORKS_AI_API_KEY": "k-fireworks"},
		"https://api.fireworks.ai/inference/v1/chat/completions", "Authorization: Bearer k-fireworks",
		"accounts/fireworks/models/llama-v3p1-8b-instruct"},
	"xai": {"model: xai/grok-3-mini", map[string]string{"XAI_API_KEY": "k-xai"},
		"https://api.x.ai/v1/chat/completions", "Authorization: Bearer k-xai", "grok-3-mini"},
	"perplexity": {"model: perplexity/sonar", map[string]string{"PERPLEXITYAI_API_KEY": "k-pplx"},
		"https://api.perplexity.ai/chat/completions", "Authorization: Bearer k-pplx", "sonar"},
	"cerebras": {"model: cerebras/llama3.1-8b", map[string]string{"CEREBRAS_API_KEY": "k-cerebras"},
		"https://api.cerebras.ai/v1/chat/completions", "Authorization: Bearer k-cerebras", "llama3.1-8b"},
	"deepinfra": {"model: deepinfra/meta-llama/Meta-Llama-3.1-8B-Instruct", map[string]string{"DEEPINFRA_API_KEY": "k-deepinfra"},
		"https://api.deepinfra.com/v1/openai/chat/completions", "Authorization: Bearer k-deepinfra", "meta-llama/Meta-Llama-3.1-8B-Instruct"},
	"huggingface": {"model: huggingface/together/deepseek-ai/DeepSeek-R1", map[string]string{"HF_TOKEN": "k-hf"},
		"https://router.huggingface.co/v1/chat/completions", "Authorization: Bearer k-hf", "deepseek-ai/DeepSeek-R1:together"},
	"groq": {"model: groq/llama-3.1-8b-instant", map[string]string{"GROQ_API_KEY": "k-groq"},
		"https://api.groq.com/openai/v1/chat/completions", "Authorization: Bearer k-groq", "llama-3.1-8b-instant"},
	"openrouter": {"model: openrouter/anthropic/claude-3.5-sonnet", map[string]string{"OR_API_KEY": "k-or"},
		"https://openrouter.ai/api/v1/chat/completions", "Authorization: Bearer k-or", "anthropic/claude-3.5-sonnet"},
	"nvidia_nim": {"model: nvidia_nim/meta/llama3-8b-instruct", map[string]string{"NVIDIA_NIM_API_KEY": "k-nim"},
		"https://integrate.api.nvidia.com/v1/chat/completions", "Authorization: Bearer k-nim", "meta/llama3-8b-instruct"},
	"sambanova": {"model: sambanova/Meta-Llama-3.1-8B-Instruct", map[string]string{"SAMBANOVA_API_KEY": "k-samba"},
		"https://api.sambanova.ai/v1/chat/completions", "Authorization: Bearer k-samba", "Meta-Llama-3.1-8B-Instruct"},
	"hosted_vllm": {"model: hosted_vllm/Qwen/Qwen2.5-7B-Instruct", map[string]string{"HOSTED_VLLM_API_BASE": "http://vllm.internal:8000/v1"},
		"http://vllm.internal:8000/v1/chat/completions", "Authorization:", "Qwen/Qwen2.5-7B-Instruct"},
	"vllm": {"model: vllm/m\napi_base: http://gpu-1:8000/v1", nil,
		"http://gpu-1:8000/v1/chat/completions", "Authorization:", "m"},
	"lm_studio": {"model: lm_studio/qwen2.5-7b-instruct", nil,
		"http://localhost:1234/v1/chat/completions", "Authorization:", "qwen2.5-7b-instruct"},
	"llamacpp": {"model: llamacpp/m", nil, "http://localhost:8080/v1/chat/completions", "Authorization:", "m"},
	"litellm_proxy": {"model: litellm_proxy/gpt-4o", map[string]string{"LITELLM_PROXY_API_BASE": "http://litellm:4000", "LITELLM_PROXY_API_KEY": "k-proxy"},
		"http://litellm:4000/chat/completions", "Authorization: Bearer k-proxy", "gpt-4o"},
	"azure": {"model: azure/gpt4o-prod", map[string]string{"AZURE_API_BASE": "https://res.openai.azure.com", "AZURE_API_KEY": "k-azure"},
		"https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21", "Api-Key: k-azure", "gpt4o-prod"},
	"cohere": {"model: cohere/command-r-plus", map[string]string{"CO_API_KEY": "k-co"},
		"https://api.cohere.com/v2/chat", "Authorization: Bearer k-co", "command-r-plus"},
	"cohere_chat": {"model: cohere_chat/command-r", map[string]string{"COHERE_API_KEY": "k-cohere"},
		"https://api.cohere.com/v2/chat", "Authorization: Bearer k-cohere", "command-r"},
	"anthropic": {"model: anthropic/claude-3-5-haiku-latest", map[string]string{"ANTHROPIC_API_KEY": "k-ant"},
		"https://api.anthropic.com/v1/messages", "X-Api-Key: k-ant", "claude-3-5-haiku-latest"},
	"gemini": {"model: gemini/gemini-2.0-flash", map[string]string{"GEMINI_API_KEY": "k-gem"},
		"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent", "X-Goog-Api-Key: k-gem", ""},
	"ollama": {"model: ollama/llama3.1:8b", map[string]string{"OLLAMA_API_BASE": "http://gpu-2:11434"},
		"http://gpu-2:11434/api/chat", "Authorization:", "llama3.1:8b"},
	"ollama_chat": {"model: ollama_chat/llama3.1:8b", nil, "http://localhost:11434/api/chat", "Authorization:", "llama3.1:8b"},
}

// buildWith parses a one-deployment config whose variables come from env
// and builds its worker Config with a recording client.
func buildWith(t *testing.T, params string, env map[string]string, rec *recorder) (Config, error) {
	t.Helper()
	var b strings.Builder
	b.WriteString("model_list:\n  - model_name: tier1\n    litellm_params:\n")
	for _, line := range strings.Split(strings.TrimSpace(params), "\n") {
		b.WriteString("      " + line + "\n")
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	cfg, err := config.Parse([]byte(b.String()), lookup)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	var doer recorder
	if rec == nil {
		rec = &doer
	}
	return fromDeployment(&cfg.ModelList[0], &cfg.RouterSettings, deploymentEnv{getenv: lookup, http: rec})
}

// call builds the deployment and makes one call, returning what was sent.
func callFamily(t *testing.T, params string, env map[string]string) *recorder {
	t.Helper()
	rec := &recorder{}
	wc, err := buildWith(t, params, env, rec)
	if err != nil {
		t.Fatalf("FromDeployment: %v", err)
	}
	_, err = wc.Provider.Complete(context.Background(), &schema.Request{
		Messages: []schema.Message{{Role: schema.RoleUser, Content: "hi"}}})
	if err == nil {
		t.Fatal("the recorder answers 500, yet the call succeeded")
	}
	if rec.req == nil {
		t.Fatal("no request was made")
	}
	return rec
}

func TestFromDeployment_EveryFamily_CallsItsEndpointWithItsKeyVariable(t *testing.T) {
	t.Parallel()
	for _, f := range family.All() {
		if f.Adapter == family.Sim {
			continue
		}
		if _, ok := familyCases[f.Prefix]; !ok {
			t.Errorf("family %s has no case in familyCases: add its endpoint and key variable", f.Prefix)
		}
	}
	for prefix, c := range familyCases {
		t.Run(prefix, func(t *testing.T) {
			t.Parallel()
			rec := callFamily(t, c.params, c.env)
			if got := rec.req.URL.String(); got != c.url {
				t.Errorf("URL = %s, want %s", got, c.url)
			}
			name, value, _ := strings.Cut(c.header, ":")
			if got := rec.req.Header.Get(name); got != strings.TrimSpace(value) {
				t.Errorf("%s = %q, want %q", name, got, strings.TrimSpace(value))
			}
			if c.model != "" && rec.body["model"] != c.model {
				t.Errorf("body model = %v, want %s", rec.body["model"], c.model)
			}
		})
	}
}

// A key variable later in the family's list is read when the earlier ones
// are not set, and an earlier one wins when both are.
func TestFromDeployment_KeyVariablesInLiteLLMsOrder(t *testing.T) {
	t.Parallel()
	rec := callFamily(t, "model: together_ai/m", map[string]string{"TOGETHER_AI_TOKEN": "last", "TOGETHERAI_API_KEY": "middle"})
	if got := rec.req.Header.Get("Authorization"); got != "Bearer middle" {
		t.Errorf("Authorization = %q, want the earlier variable's key", got)
	}
	rec = callFamily(t, "model: huggingface/org/m", map[string]string{"HF_TOKEN": "hf", "HUGGINGFACE_API_KEY": "hk"})
	if got := rec.req.Header.Get("Authorization"); got != "Bearer hk" {
		t.Errorf("Authorization = %q, want HUGGINGFACE_API_KEY's (LiteLLM reads it first)", got)
	}
	if rec.body["model"] != "org/m" {
		t.Errorf("model = %v: <org>/<model> goes as it is", rec.body["model"])
	}
}

func TestFromDeployment_ParamsWinOverVariables(t *testing.T) {
	t.Parallel()
	rec := callFamily(t, "model: groq/m\napi_key: from-file\napi_base: https://gw.example.com/groq/v1",
		map[string]string{"GROQ_API_KEY": "from-env", "GROQ_API_BASE": "https://env.example.com/v1"})
	if rec.req.URL.String() != "https://gw.example.com/groq/v1/chat/completions" || rec.req.Header.Get("Authorization") != "Bearer from-file" {
		t.Errorf("URL %s, Authorization %q", rec.req.URL, rec.req.Header.Get("Authorization"))
	}
}

func TestFromDeployment_AzureVersionAndToken(t *testing.T) {
	t.Parallel()
	base := map[string]string{"AZURE_API_BASE": "https://res.openai.azure.com"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name, params string
		env          map[string]string
		version      string
		apiKey, auth string
	}{
		{"api_version from the file", "model: azure/d\napi_version: 2025-01-01-preview\napi_key: k", with("AZURE_API_VERSION", "2024-06-01"),
			"2025-01-01-preview", "k", ""},
		{"api_version from AZURE_API_VERSION", "model: azure/d\napi_key: k", with("AZURE_API_VERSION", "2024-06-01"), "2024-06-01", "k", ""},
		{"default api_version", "model: azure/d\napi_key: k", with(), "2024-10-21", "k", ""},
		{"AZURE_OPENAI_API_KEY before AZURE_API_KEY", "model: azure/d", with("AZURE_API_KEY", "b", "AZURE_OPENAI_API_KEY", "a"), "2024-10-21", "a", ""},
		{"azure_ad_token", "model: azure/d\nazure_ad_token: tok", with(), "2024-10-21", "", "Bearer tok"},
		{"azure_ad_token in the file beats a key from the environment", "model: azure/d\nazure_ad_token: tok", with("AZURE_API_KEY", "env"),
			"2024-10-21", "", "Bearer tok"},
		{"api_key in the file beats azure_ad_token", "model: azure/d\napi_key: k\nazure_ad_token: tok", with(), "2024-10-21", "k", ""},
		{"AZURE_AD_TOKEN when there is no key", "model: azure/d", with("AZURE_AD_TOKEN", "envtok"), "2024-10-21", "", "Bearer envtok"},
		{"a key variable beats AZURE_AD_TOKEN", "model: azure/d", with("AZURE_AD_TOKEN", "envtok", "AZURE_API_KEY", "k"), "2024-10-21", "k", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rec := callFamily(t, c.params, c.env)
			if got := rec.req.URL.Query().Get("api-version"); got != c.version {
				t.Errorf("api-version = %q, want %q", got, c.version)
			}
			if rec.req.Header.Get("Api-Key") != c.apiKey || rec.req.Header.Get("Authorization") != c.auth {
				t.Errorf("api-key %q authorization %q, want %q %q", rec.req.Header.Get("Api-Key"),
					rec.req.Header.Get("Authorization"), c.apiKey, c.auth)
			}
		})
	}
}

func TestFromDeployment_MissingKeyOrBase_NamesVariablesNotValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		params string
		env    map[string]string
		want   []string
	}{
		{"model: mistral/m", nil, []string{"tier1", "mistral needs an API key", "MISTRAL_API_KEY"}},
		{"model: together_ai/m", nil, []string{"TOGETHER_API_KEY", "TOGETHERAI_API_KEY"}},
		{"model: cohere/command-r", nil, []string{"COHERE_API_KEY", "CO_API_KEY"}},
		{"model: hosted_vllm/m", map[string]string{"HOSTED_VLLM_API_KEY": "secret-vllm-key"}, []string{"api_base", "HOSTED_VLLM_API_BASE"}},
		{"model: azure/d", map[string]string{"AZURE_API_KEY": "secret-azure-key"}, []string{"api_base", "AZURE_API_BASE"}},
		{"model: azure/d", map[string]string{"AZURE_API_BASE": "https://r.openai.azure.com"}, []string{"AZURE_API_KEY", "AZURE_AD_TOKEN"}},
	}
	for _, c := range cases {
		_, err := buildWith(t, c.params, c.env, nil)
		if err == nil {
			t.Errorf("%s: no error", c.params)
			continue
		}
		for _, w := range append(c.want, "tier1") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %s", c.params, err, w)
			}
		}
		for _, v := range c.env {
			if strings.HasPrefix(v, "secret") && strings.Contains(err.Error(), v) {
				t.Errorf("%s: error %q shows a secret", c.params, err)
			}
		}
	}
}

func TestFromDeployment_Unsupported_IsErrUnsupportedNamingDeployment(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"bedrock/anthropic.claude-3-sonnet", "vertex_ai/gemini-1.5-pro", "sagemaker/jumpstart", "azure_ai/mistral-large",
		"replicate/meta/llama-3", "watsonx/ibm/granite-13b"} {
		_, err := buildWith(t, "model: "+m, nil, nil)
		if !errors.Is(err, family.ErrUnsupported) {
			t.Errorf("%s: err %v is not ErrUnsupported", m, err)
			continue
		}
		prefix, _, _ := strings.Cut(m, "/")
		for _, w := range []string{"tier1", `"` + prefix + `"`, "not supported by llmq yet"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %s", m, err, w)
			}
		}
	}
}
