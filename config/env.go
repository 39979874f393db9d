package config

import "strings"

// EnvPrefix marks a value read from the environment.
const EnvPrefix = "os.environ/"

// envMarker tags resolved nodes, so errors about them do not repeat a
// value that may be a secret.
const envMarker = "# llmq: from the environment"

// ProviderVars are the environment variables LiteLLM reads for a provider
// when a deployment does not set the parameter: the first one set wins.
type ProviderVars struct {
	Key, Base, Version []string
}

// ProviderEnv maps a provider prefix (the part of litellm_params.model
// before "/") to the variables LiteLLM falls back on, so that a
// deployment without api_key reads OPENAI_API_KEY, ANTHROPIC_API_KEY, ...
// as it would under LiteLLM. Parse applies it (the Deployment's KeyEnv,
// BaseEnv and VersionEnv name the variable used); providers and checks may
// read it. Prefixes llmq does not serve are listed too, so a message can
// name the variable.
var ProviderEnv = map[string]ProviderVars{
	"openai":                 {Key: []string{"OPENAI_API_KEY"}, Base: []string{"OPENAI_BASE_URL", "OPENAI_API_BASE"}},
	"text-completion-openai": {Key: []string{"OPENAI_API_KEY"}, Base: []string{"OPENAI_BASE_URL", "OPENAI_API_BASE"}},
	"anthropic":              {Key: []string{"ANTHROPIC_API_KEY"}, Base: []string{"ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"}},
	"gemini":                 {Key: []string{"GEMINI_API_KEY"}, Base: []string{"GEMINI_API_BASE"}},
	"azure": {Key: []string{"AZURE_API_KEY", "AZURE_OPENAI_API_KEY"}, Base: []string{"AZURE_API_BASE"},
		Version: []string{"AZURE_API_VERSION"}},
	"azure_ai":     {Key: []string{"AZURE_AI_API_KEY"}, Base: []string{"AZURE_AI_API_BASE"}},
	"ollama":       {Key: []string{"OLLAMA_API_KEY"}, Base: []string{"OLLAMA_API_BASE"}},
	"ollama_chat":  {Key: []string{"OLLAMA_API_KEY"}, Base: []string{"OLLAMA_API_BASE"}},
	"mistral":      {Key: []string{"MISTRAL_API_KEY"}, Base: []string{"MISTRAL_API_BASE"}},
	"deepseek":     {Key: []string{"DEEPSEEK_API_KEY"}, Base: []string{"DEEPSEEK_API_BASE"}},
	"together_ai":  {Key: []string{"TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_TOKEN"}},
	"fireworks_ai": {Key: []string{"FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"}},
	"xai":          {Key: []string{"XAI_API_KEY"}, Base: []string{"XAI_API_BASE"}},
	"perplexity":   {Key: []string{"PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"}},
	"cerebras":     {Key: []string{"CEREBRAS_API_KEY"}},
	"deepinfra":    {Key: []string{"DEEPINFRA_API_KEY"}},
	"huggingface":  {Key: []string{"HF_TOKEN", "HUGGINGFACE_API_KEY"}, Base: []string{"HUGGINGFACE_API_BASE"}},
	"groq":         {Key: []string{"GROQ_API_KEY"}},
	"openrouter":   {Key: []string{"OPENROUTER_API_KEY", "OR_API_KEY"}, Base: []string{"OPENROUTER_API_BASE"}},
	"cohere":       {Key: []string{"COHERE_API_KEY", "CO_API_KEY"}},
	"cohere_chat":  {Key: []string{"COHERE_API_KEY", "CO_API_KEY"}},
	"hosted_vllm":  {Key: []string{"HOSTED_VLLM_API_KEY"}, Base: []string{"HOSTED_VLLM_API_BASE"}},
	"lm_studio":    {Key: []string{"LM_STUDIO_API_KEY"}, Base: []string{"LM_STUDIO_API_BASE"}},
	"nvidia_nim":   {Key: []string{"NVIDIA_NIM_API_KEY"}, Base: []string{"NVIDIA_NIM_API_BASE"}},
	"sambanova":    {Key: []string{"SAMBANOVA_API_KEY"}},
	"replicate":    {Key: []string{"REPLICATE_API_KEY"}},
	"voyage":       {Key: []string{"VOYAGE_API_KEY"}},
}

// ProviderPrefix is the provider part of a LiteLLM model string:
// "gemini/gemini-1.5-flash" → "gemini". Bare "claude-…" names are
// Anthropic's and bare "gpt-…", "o1…", "o3…", "o4…" names OpenAI's, as
// LiteLLM (and llmq's worker) read them; other bare names have none ("").
func ProviderPrefix(model string) string {
	if p, _, ok := strings.Cut(model, "/"); ok {
		return p
	}
	switch {
	case strings.HasPrefix(model, "claude-"):
		return "anthropic"
	case strings.HasPrefix(model, "gpt-"), strings.HasPrefix(model, "o1"), strings.HasPrefix(model, "o3"),
		strings.HasPrefix(model, "o4"):
		return "openai"
	}
	return ""
}

// firstSet returns the first of names that lookup finds.
func firstSet(names []string, lookup func(string) (string, bool)) (name, value string, ok bool) {
	for _, n := range names {
		if v, found := lookup(n); found {
			return n, v, true
		}
	}
	return "", "", false
}
