package config

import "github.com/llmq/llmq/config/family"

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
// read it. It is made from package family's table, the one list of the
// providers llmq serves, their endpoints and their variables.
var ProviderEnv = providerEnv()

func providerEnv() map[string]ProviderVars {
	out := map[string]ProviderVars{}
	for _, f := range family.All() {
		if len(f.KeyEnv)+len(f.BaseEnv)+len(f.VersionEnv) > 0 {
			out[f.Prefix] = ProviderVars{Key: f.KeyEnv, Base: f.BaseEnv, Version: f.VersionEnv}
		}
	}
	return out
}

// ProviderPrefix is the provider part of a LiteLLM model string:
// "gemini/gemini-1.5-flash" → "gemini". Bare "claude-…" names are
// Anthropic's and bare "gpt-…", "o1…", "o3…", "o4…" names OpenAI's, as
// LiteLLM (and llmq's worker) read them; other bare names have none ("").
func ProviderPrefix(model string) string {
	if p, _, ok := family.Split(model); ok {
		return p
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

// isOllamaModel reports whether a litellm_params.model is served by the
// Ollama adapter (ollama/, ollama_chat/).
func isOllamaModel(model string) bool {
	prefix, _, ok := family.Split(model)
	if !ok {
		return false
	}
	f, ok := family.Lookup(prefix)
	return ok && f.Adapter == family.Ollama
}
