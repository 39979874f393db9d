// Package family is llmq's table of LiteLLM's provider prefixes: which
// adapter serves each "<prefix>/<model>", its default endpoint, and the
// environment variables LiteLLM reads when a deployment leaves api_key,
// api_base or api_version out. A second table lists the prefixes llmq
// knows but does not serve yet.
//
// The tables are the single source of truth: worker.ParseModel and
// worker.FromDeployment read them, docs/providers/openai.md documents
// them (a test keeps the two in step), and a configuration check can
// import this package, which depends on nothing else of llmq's.
//
// The base URLs and variable names were checked against LiteLLM's source
// (litellm/litellm_core_utils/get_llm_provider_logic.py and each
// provider's transformation.py); where llmq differs, the Notes say so.
package family

import (
	"slices"
	"strings"
)

// Adapter names the llmq adapter that serves a family.
type Adapter string

// The adapters.
const (
	OpenAI    Adapter = "openai"    // Chat Completions (worker/provider/openai)
	Azure     Adapter = "azure"     // Azure OpenAI (worker/provider/azure)
	Anthropic Adapter = "anthropic" // Messages API
	Gemini    Adapter = "gemini"    // Gemini API
	Ollama    Adapter = "ollama"    // Ollama's /api/chat
	Cohere    Adapter = "cohere"    // Cohere's v2 chat
	Sim       Adapter = "sim"       // the built-in simulator
)

// Embeds reports whether the adapter serves embedding deployments
// (model_info.mode embedding): Ollama's /api/embed, Gemini's
// batchEmbedContents, /v1/embeddings of OpenAI-compatible servers and
// Azure, the simulator. Anthropic has no embeddings API; llmq's Cohere
// adapter speaks chat only.
func (a Adapter) Embeds() bool {
	switch a {
	case Ollama, Gemini, OpenAI, Azure, Sim:
		return true
	}
	return false
}

// Embedders lists the adapters that embed, for messages.
func Embedders() string { return "ollama, gemini, OpenAI-compatible, azure and sim" }

// Family is one LiteLLM provider prefix.
type Family struct {
	// Prefix is what comes before the first "/" of litellm_params.model.
	Prefix string
	// Adapter serves it.
	Adapter Adapter
	// BaseURL is the api_base used when the deployment and BaseEnv give
	// none; "" means the deployment must give one.
	BaseURL string
	// KeyEnv, BaseEnv and VersionEnv are the variables read, first set
	// (and not empty) wins, when litellm_params has no api_key, api_base
	// or api_version; TokenEnv likewise for azure_ad_token.
	KeyEnv, BaseEnv, VersionEnv, TokenEnv []string
	// KeyRequired says the default endpoint refuses calls without a key:
	// a deployment that uses it and has no key fails at start rather than
	// on every call. A deployment with its own api_base may go without.
	KeyRequired bool
	// Model, when set, turns the name written after the prefix into the
	// one the server expects.
	Model func(name string) string
	// Notes are for the documentation table.
	Notes string
}

// WireModel is the model name sent to the server for name.
func (f Family) WireModel(name string) string {
	if f.Model == nil {
		return name
	}
	return f.Model(name)
}

// families is the table. Order: the providers with their own adapter,
// then the OpenAI-compatible ones as docs/providers/openai.md lists them.
var families = []Family{
	{Prefix: "ollama", Adapter: Ollama, BaseURL: "http://localhost:11434",
		KeyEnv: []string{"OLLAMA_API_KEY"}, BaseEnv: []string{"OLLAMA_API_BASE"},
		Notes: "Ollama's own `/api/chat` ([ollama.md](ollama.md)); a key only for a proxy or ollama.com"},
	{Prefix: "ollama_chat", Adapter: Ollama, BaseURL: "http://localhost:11434",
		KeyEnv: []string{"OLLAMA_API_KEY"}, BaseEnv: []string{"OLLAMA_API_BASE"},
		Notes: "same as `ollama/`"},
	{Prefix: "gemini", Adapter: Gemini, BaseURL: "https://generativelanguage.googleapis.com",
		KeyEnv: []string{"GEMINI_API_KEY", "GOOGLE_API_KEY"}, BaseEnv: []string{"GEMINI_API_BASE"}, KeyRequired: true,
		Notes: "Gemini API with an AI Studio key ([gemini.md](gemini.md))"},
	{Prefix: "anthropic", Adapter: Anthropic, BaseURL: "https://api.anthropic.com",
		KeyEnv: []string{"ANTHROPIC_API_KEY"}, BaseEnv: []string{"ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"}, KeyRequired: true,
		Notes: "Messages API ([anthropic.md](anthropic.md)); bare `claude-…` names too"},
	{Prefix: "cohere", Adapter: Cohere, BaseURL: "https://api.cohere.com",
		KeyEnv: []string{"COHERE_API_KEY", "CO_API_KEY"}, BaseEnv: []string{"COHERE_API_BASE"}, KeyRequired: true,
		Notes: "Cohere's v2 chat API ([cohere.md](cohere.md))"},
	{Prefix: "cohere_chat", Adapter: Cohere, BaseURL: "https://api.cohere.com",
		KeyEnv: []string{"COHERE_API_KEY", "CO_API_KEY"}, BaseEnv: []string{"COHERE_API_BASE"}, KeyRequired: true,
		Notes: "same as `cohere/`"},
	{Prefix: "azure", Adapter: Azure,
		KeyEnv: []string{"AZURE_OPENAI_API_KEY", "AZURE_API_KEY"}, BaseEnv: []string{"AZURE_API_BASE"},
		VersionEnv: []string{"AZURE_API_VERSION"}, TokenEnv: []string{"AZURE_AD_TOKEN"},
		Notes: "the name is the deployment; `api_base` is `https://<resource>.openai.azure.com` ([below](#azure-openai))"},
	{Prefix: "sim", Adapter: Sim, Notes: "llmq's built-in simulator, no server"},

	{Prefix: "openai", Adapter: OpenAI, BaseURL: "https://api.openai.com/v1",
		KeyEnv: []string{"OPENAI_API_KEY"}, BaseEnv: []string{"OPENAI_BASE_URL", "OPENAI_API_BASE"}, KeyRequired: true,
		Notes: "bare `gpt-…`, `o1…`, `o3…`, `o4…` names too"},
	{Prefix: "mistral", Adapter: OpenAI, BaseURL: "https://api.mistral.ai/v1",
		KeyEnv: []string{"MISTRAL_API_KEY"}, BaseEnv: []string{"MISTRAL_API_BASE"}, KeyRequired: true},
	{Prefix: "codestral", Adapter: OpenAI, BaseURL: "https://codestral.mistral.ai/v1",
		KeyEnv: []string{"CODESTRAL_API_KEY"}, BaseEnv: []string{"CODESTRAL_API_BASE"}, KeyRequired: true},
	{Prefix: "deepseek", Adapter: OpenAI, BaseURL: "https://api.deepseek.com/v1",
		KeyEnv: []string{"DEEPSEEK_API_KEY"}, BaseEnv: []string{"DEEPSEEK_API_BASE"}, KeyRequired: true,
		Notes: "LiteLLM defaults to the `/beta` base; llmq uses the stable `/v1`"},
	{Prefix: "together_ai", Adapter: OpenAI, BaseURL: "https://api.together.xyz/v1",
		KeyEnv:  []string{"TOGETHER_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_TOKEN"},
		BaseEnv: []string{"TOGETHER_AI_API_BASE"}, KeyRequired: true},
	{Prefix: "fireworks_ai", Adapter: OpenAI, BaseURL: "https://api.fireworks.ai/inference/v1",
		KeyEnv:  []string{"FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"},
		BaseEnv: []string{"FIREWORKS_API_BASE"}, KeyRequired: true, Model: fireworksModel,
		Notes: "a name without `accounts/` is sent as `accounts/fireworks/models/<name>`"},
	{Prefix: "xai", Adapter: OpenAI, BaseURL: "https://api.x.ai/v1",
		KeyEnv: []string{"XAI_API_KEY"}, BaseEnv: []string{"XAI_API_BASE"}, KeyRequired: true},
	{Prefix: "perplexity", Adapter: OpenAI, BaseURL: "https://api.perplexity.ai",
		KeyEnv: []string{"PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"}, BaseEnv: []string{"PERPLEXITY_API_BASE"}, KeyRequired: true,
		Notes: "no `/v1` in the base"},
	{Prefix: "cerebras", Adapter: OpenAI, BaseURL: "https://api.cerebras.ai/v1",
		KeyEnv: []string{"CEREBRAS_API_KEY"}, BaseEnv: []string{"CEREBRAS_API_BASE"}, KeyRequired: true},
	{Prefix: "deepinfra", Adapter: OpenAI, BaseURL: "https://api.deepinfra.com/v1/openai",
		KeyEnv: []string{"DEEPINFRA_API_KEY"}, BaseEnv: []string{"DEEPINFRA_API_BASE"}, KeyRequired: true},
	{Prefix: "huggingface", Adapter: OpenAI, BaseURL: "https://router.huggingface.co/v1",
		KeyEnv: []string{"HUGGINGFACE_API_KEY", "HF_TOKEN"}, BaseEnv: []string{"HF_API_BASE", "HUGGINGFACE_API_BASE"},
		KeyRequired: true, Model: huggingfaceModel,
		Notes: "Inference Providers router; `huggingface/<provider>/<org>/<model>` is sent as `<org>/<model>:<provider>`"},
	{Prefix: "groq", Adapter: OpenAI, BaseURL: "https://api.groq.com/openai/v1",
		KeyEnv: []string{"GROQ_API_KEY"}, BaseEnv: []string{"GROQ_API_BASE"}, KeyRequired: true},
	{Prefix: "openrouter", Adapter: OpenAI, BaseURL: "https://openrouter.ai/api/v1",
		KeyEnv: []string{"OPENROUTER_API_KEY", "OR_API_KEY"}, BaseEnv: []string{"OPENROUTER_API_BASE"}, KeyRequired: true},
	{Prefix: "nvidia_nim", Adapter: OpenAI, BaseURL: "https://integrate.api.nvidia.com/v1",
		KeyEnv: []string{"NVIDIA_NIM_API_KEY"}, BaseEnv: []string{"NVIDIA_NIM_API_BASE"}, KeyRequired: true},
	{Prefix: "sambanova", Adapter: OpenAI, BaseURL: "https://api.sambanova.ai/v1",
		KeyEnv: []string{"SAMBANOVA_API_KEY"}, BaseEnv: []string{"SAMBANOVA_API_BASE"}, KeyRequired: true},
	{Prefix: "hosted_vllm", Adapter: OpenAI,
		KeyEnv: []string{"HOSTED_VLLM_API_KEY"}, BaseEnv: []string{"HOSTED_VLLM_API_BASE"},
		Notes: "`api_base` required (`http://host:8000/v1`); key optional"},
	{Prefix: "vllm", Adapter: OpenAI,
		Notes: "as `hosted_vllm/`, `api_base` required (LiteLLM's `vllm/` runs the vllm library in-process; llmq calls a server)"},
	{Prefix: "lm_studio", Adapter: OpenAI, BaseURL: "http://localhost:1234/v1",
		KeyEnv: []string{"LM_STUDIO_API_KEY"}, BaseEnv: []string{"LM_STUDIO_API_BASE"},
		Notes: "LM Studio's default port; LiteLLM has no default"},
	{Prefix: "llamacpp", Adapter: OpenAI, BaseURL: "http://localhost:8080/v1",
		Notes: "llama.cpp server's default port (an llmq prefix, not LiteLLM's)"},
	{Prefix: "litellm_proxy", Adapter: OpenAI,
		KeyEnv: []string{"LITELLM_PROXY_API_KEY"}, BaseEnv: []string{"LITELLM_PROXY_API_BASE"},
		Notes: "a LiteLLM proxy; `api_base` required"},
}

// fireworksModel is LiteLLM's naming for Fireworks: a bare model name is
// one of Fireworks' own models.
func fireworksModel(name string) string {
	if strings.HasPrefix(name, "accounts/") {
		return name
	}
	return "accounts/fireworks/models/" + name
}

// huggingfaceModel turns LiteLLM's provider routing,
// "<provider>/<org>/<model>", into the router's "<org>/<model>:<provider>".
// "<org>/<model>" lets the router pick the provider.
func huggingfaceModel(name string) string {
	provider, rest, ok := strings.Cut(name, "/")
	if !ok || !strings.Contains(rest, "/") {
		return name
	}
	return rest + ":" + provider
}

// Lookup returns the family of prefix.
func Lookup(prefix string) (Family, bool) {
	i := slices.IndexFunc(families, func(f Family) bool { return f.Prefix == prefix })
	if i < 0 {
		return Family{}, false
	}
	return families[i], true
}

// All returns every family, in table order.
func All() []Family { return slices.Clone(families) }

// Prefixes returns the prefixes llmq serves, sorted.
func Prefixes() []string {
	out := make([]string, len(families))
	for i, f := range families {
		out[i] = f.Prefix
	}
	slices.Sort(out)
	return out
}

// Split cuts a LiteLLM model string into its prefix and name:
// "groq/llama-3.1-8b" → ("groq", "llama-3.1-8b"). Bare "claude-…" names
// are Anthropic's and bare "gpt-…", "o1…", "o3…", "o4…" names OpenAI's,
// as LiteLLM reads them. ok is false for any other bare name.
func Split(model string) (prefix, name string, ok bool) {
	if p, n, found := strings.Cut(model, "/"); found {
		return p, n, true
	}
	switch {
	case strings.HasPrefix(model, "claude-"):
		return "anthropic", model, true
	case strings.HasPrefix(model, "gpt-"), strings.HasPrefix(model, "o1"), strings.HasPrefix(model, "o3"),
		strings.HasPrefix(model, "o4"):
		return "openai", model, true
	}
	return "", model, false
}

// FirstSet returns the first of names that getenv finds with a value that
// is not empty (LiteLLM skips empty ones too): its name and value.
func FirstSet(names []string, getenv func(string) (string, bool)) (name, value string, ok bool) {
	for _, n := range names {
		if v, found := getenv(n); found && v != "" {
			return n, v, true
		}
	}
	return "", "", false
}
