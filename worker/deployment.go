package worker

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/anthropic"
	"github.com/llmq/llmq/worker/provider/gemini"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/sim"
)

// Provider names, as heartbeats and replies report them.
const (
	ProviderOllama    = "ollama"
	ProviderGemini    = "gemini"
	ProviderAnthropic = "anthropic"
	ProviderOpenAI    = "openai"
	ProviderSim       = "sim"
)

// openAICompatible maps LiteLLM's prefixes for OpenAI-compatible servers to
// their public endpoint ("" when api_base is required).
var openAICompatible = map[string]string{
	"openai":      "https://api.openai.com/v1",
	"hosted_vllm": "",
	"vllm":        "",
	"openrouter":  "https://openrouter.ai/api/v1",
	"groq":        "https://api.groq.com/openai/v1",
	"lm_studio":   "http://localhost:1234/v1",
	"llamacpp":    "http://localhost:8080/v1",
	"deepseek":    "https://api.deepseek.com/v1",
	"together_ai": "https://api.together.xyz/v1",
	"mistral":     "https://api.mistral.ai/v1",
}

// ParseModel splits a LiteLLM model string into llmq's provider name and
// the provider's model name: "ollama/qwen2.5-coder:14b" → ("ollama",
// "qwen2.5-coder:14b"). Bare "claude-…" names are Anthropic's and bare
// "gpt-…"/"o1…" names OpenAI's, as LiteLLM reads them. An unknown prefix
// is an error.
func ParseModel(model string) (providerName, name, prefix string, err error) {
	prefix, name, ok := strings.Cut(model, "/")
	if !ok {
		switch {
		case strings.HasPrefix(model, "claude-"):
			return ProviderAnthropic, model, "anthropic", nil
		case strings.HasPrefix(model, "gpt-"), strings.HasPrefix(model, "o1"), strings.HasPrefix(model, "o3"), strings.HasPrefix(model, "o4"):
			return ProviderOpenAI, model, "openai", nil
		}
		return "", "", "", fmt.Errorf("model %q names no provider: write <provider>/<model>, e.g. ollama/%s", model, model)
	}
	if name == "" {
		return "", "", "", fmt.Errorf("model %q has no model name after %q", model, prefix+"/")
	}
	switch prefix {
	case "ollama", "ollama_chat":
		return ProviderOllama, name, prefix, nil
	case "gemini":
		return ProviderGemini, name, prefix, nil
	case "anthropic":
		return ProviderAnthropic, name, prefix, nil
	case "sim":
		return ProviderSim, name, prefix, nil
	}
	if _, ok := openAICompatible[prefix]; ok {
		return ProviderOpenAI, name, prefix, nil
	}
	return "", "", "", fmt.Errorf("model %q: unknown provider prefix %q (llmq knows ollama, ollama_chat, gemini, anthropic, sim and the OpenAI-compatible %s)", model, prefix, strings.Join(compatiblePrefixes(), ", "))
}

func compatiblePrefixes() []string {
	out := make([]string, 0, len(openAICompatible))
	for p := range openAICompatible {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Defaults of a deployment's concurrency when max_parallel_requests is
// unset.
const (
	DefaultOllamaConcurrency = 4
	DefaultCloudConcurrency  = 32
)

// FromDeployment builds the worker Config of a config deployment: its
// provider adapter, concurrency, routing hints and time-outs. Conn,
// Subjects, Logger and HeartbeatInterval are the caller's to set. It fails
// for an unset os.environ/ variable, an unknown provider prefix or an
// adapter's own validation.
func FromDeployment(d *config.Deployment, rs *config.RouterSettings) (Config, error) {
	if err := d.Err(); err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	p := d.LitellmParams
	name, model, prefix, err := ParseModel(p.Model)
	if err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	timeout := p.Timeout.D()
	if timeout <= 0 && rs != nil {
		timeout = rs.Timeout.D()
	}
	streamTimeout := p.StreamTimeout.D()
	if streamTimeout <= 0 && rs != nil {
		streamTimeout = rs.StreamTimeout.D()
	}
	opts := provider.Options{Model: model, APIBase: p.APIBase, APIKey: p.APIKey, Timeout: timeout, StreamTimeout: streamTimeout}
	cfg := Config{
		Tier:          d.ModelName,
		Deployment:    d.ID,
		ProviderName:  name,
		Model:         model,
		Host:          hostOf(p.APIBase),
		Concurrency:   p.MaxParallelRequests,
		Weight:        shuffleWeight(p),
		Order:         p.Order,
		Timeout:       timeout,
		StreamTimeout: streamTimeout,
		MaxTokens:     p.MaxTokens,

		InputCostPerToken:  p.InputCostPerToken,
		OutputCostPerToken: p.OutputCostPerToken,
	}
	if rs != nil {
		cfg.Cooldown = Cooldown{Time: rs.CooldownTime.D(), Disabled: rs.DisableCooldowns}
		if rs.AllowedFails != nil {
			cfg.Cooldown.AllowedFails = *rs.AllowedFails
		}
	}
	if err := routerOptions(&cfg, d, rs); err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	var prov provider.Provider
	switch name {
	case ProviderSim:
		s, err := sim.New(sim.Config{
			Name:            model,
			TTFT:            p.Sim.TTFT.D(),
			TokensPerSecond: p.Sim.TokensPerSecond,
			Parallel:        p.Sim.Parallel,
			ErrorRate:       p.Sim.ErrorRate,
			Tokens:          p.Sim.Tokens,
		})
		if err != nil {
			return Config{}, fmt.Errorf("deployment %s: %w", d, err)
		}
		prov = s
		cfg.Host = "simulator"
		if cfg.Concurrency <= 0 {
			cfg.Concurrency = s.Parallel()
		}
	case ProviderOllama:
		o, err := ollama.New(opts)
		if err != nil {
			return Config{}, fmt.Errorf("deployment %s: %w", d, err)
		}
		prov, cfg.Host = o, o.Host()
		if cfg.Concurrency <= 0 {
			cfg.Concurrency = DefaultOllamaConcurrency
		}
	case ProviderGemini:
		prov, err = gemini.New(opts)
	case ProviderAnthropic:
		prov, err = anthropic.New(opts)
	case ProviderOpenAI:
		if opts.APIBase == "" {
			opts.APIBase = openAICompatible[prefix]
			if opts.APIBase == "" {
				return Config{}, fmt.Errorf("deployment %s: %s models need litellm_params.api_base (the server's URL ending in /v1)", d, prefix)
			}
		}
		prov, err = openai.New(opts)
	}
	if err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultCloudConcurrency
	}
	cfg.Provider = prov
	return cfg, nil
}

// shuffleWeight is LiteLLM's simple-shuffle weight: weight, else rpm, else
// tpm, else 0 (uniform).
func shuffleWeight(p config.LitellmParams) float64 {
	switch {
	case p.Weight > 0:
		return p.Weight
	case p.RPM > 0:
		return float64(p.RPM)
	case p.TPM > 0:
		return float64(p.TPM)
	}
	return 0
}

// hostOf returns scheme://host of an api_base, without user info or query
// (where a key could hide).
func hostOf(base string) string {
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
