package config

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// AllowedFailsPolicyKeys are the router_settings.allowed_fails_policy keys
// llmq reads: LiteLLM's AllowedFailsPolicy. worker.AllowedFailsFromLiteLLM
// maps them to llmq's error codes.
var AllowedFailsPolicyKeys = []string{
	"BadRequestErrorAllowedFails", "AuthenticationErrorAllowedFails", "TimeoutErrorAllowedFails",
	"RateLimitErrorAllowedFails", "ContentPolicyViolationErrorAllowedFails", "InternalServerErrorAllowedFails",
	"ServiceUnavailableErrorAllowedFails", "BadGatewayErrorAllowedFails", "NotFoundErrorAllowedFails",
}

// checkAllowedFailsPolicy warns about allowed_fails_policy keys nobody
// reads, those that can have no effect and negative counts.
func (f *finisher) checkAllowedFailsPolicy(rs *yaml.Node) {
	p := deref(mapValue(rs, "allowed_fails_policy"))
	if p == nil || p.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(p.Content); i += 2 {
		k := p.Content[i]
		path := "router_settings.allowed_fails_policy." + k.Value
		switch {
		case !slices.Contains(AllowedFailsPolicyKeys, k.Value):
			f.ds.warnf(k.Line, path, "unknown key, ignored (LiteLLM's allowed_fails_policy has %s)", strings.Join(AllowedFailsPolicyKeys, ", "))
		case k.Value == "BadRequestErrorAllowedFails" || k.Value == "ContentPolicyViolationErrorAllowedFails":
			f.ds.warnf(k.Line, path, "has no effect: a 400 (bad request, content policy) never cools a deployment, in llmq as in LiteLLM")
		}
		if n := f.c.RouterSettings.AllowedFailsPolicy[k.Value]; n < 0 {
			f.ds.warnf(k.Line, path, "%d is negative: taken as 0 (the first such failure rests the deployment)", n)
		}
	}
}

// contextWindows are the input windows (max_input_tokens) of common models,
// for pre-call checks of deployments whose model_info sets none. Source:
// LiteLLM's model_prices_and_context_window.json (max_input_tokens), which
// LiteLLM's pre-call checks read the same way; for Claude the provider's
// standard 200K window (without the 1M beta header). Keys are model names
// without a provider prefix; see ContextWindow for how names match.
var contextWindows = map[string]int{
	// OpenAI
	"gpt-3.5-turbo":      16385,
	"gpt-4":              8192,
	"gpt-4-32k":          32768,
	"gpt-4-turbo":        128000,
	"gpt-4-0125-preview": 128000,
	"gpt-4-1106-preview": 128000,
	"gpt-4o":             128000,
	"gpt-4o-mini":        128000,
	"gpt-4.1":            1047576,
	"gpt-4.1-mini":       1047576,
	"gpt-4.1-nano":       1047576,
	"o1":                 200000,
	"o1-mini":            128000,
	"o3":                 200000,
	"o3-mini":            200000,
	"o4-mini":            200000,
	// Anthropic
	"claude-3-haiku":    200000,
	"claude-3-sonnet":   200000,
	"claude-3-opus":     200000,
	"claude-3-5-haiku":  200000,
	"claude-3-5-sonnet": 200000,
	"claude-3-7-sonnet": 200000,
	"claude-sonnet-4":   200000,
	"claude-opus-4":     200000,
	"claude-opus-4-1":   200000,
	// Google
	"gemini-1.5-flash":      1048576,
	"gemini-1.5-pro":        2097152,
	"gemini-2.0-flash":      1048576,
	"gemini-2.0-flash-lite": 1048576,
	"gemini-2.5-flash":      1048576,
	"gemini-2.5-flash-lite": 1048576,
	"gemini-2.5-pro":        1048576,
	// DeepSeek
	"deepseek-chat":     65536,
	"deepseek-reasoner": 65536,
}

// ContextWindow returns the input window of a model llmq's table knows, or
// 0. model may carry provider prefixes ("openai/gpt-4o", the part after
// the last "/" is looked up). A name matches a table key exactly, or as
// the key followed by a version: "-latest", "-" and a digit (a date or
// snapshot, as in "gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022",
// "gemini-1.5-pro-002") or "@" (Vertex's "claude-3-5-sonnet@20240620");
// the longest matching key wins, so "gpt-4o-mini-2024-07-18" is
// gpt-4o-mini's. Local models (Ollama, vLLM, ...) are not in the table:
// their window is the server's setting; give model_info.max_input_tokens.
func ContextWindow(model string) int {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	best, n := "", 0
	for key, v := range contextWindows {
		if len(key) > len(best) && versionOf(model, key) {
			best, n = key, v
		}
	}
	return n
}

// versionOf reports whether model is key or key followed by a version.
func versionOf(model, key string) bool {
	rest, ok := strings.CutPrefix(model, key)
	switch {
	case !ok:
		return false
	case rest == "", rest == "-latest", rest[0] == '@':
		return true
	}
	return len(rest) > 1 && rest[0] == '-' && rest[1] >= '0' && rest[1] <= '9'
}

// InputWindow returns the deployment's context window for pre-call checks
// and where it comes from: model_info.max_input_tokens, else llmq's table
// (ContextWindow) for model_info.base_model or litellm_params.model; 0
// when unknown (no check, as in LiteLLM).
func (d *Deployment) InputWindow() (int, string) {
	if n := d.ModelInfo.MaxInputTokens; n > 0 {
		return n, "model_info.max_input_tokens"
	}
	if b := d.ModelInfo.BaseModel; b != "" {
		if n := ContextWindow(b); n > 0 {
			return n, "llmq's table for model_info.base_model " + b
		}
	}
	if n := ContextWindow(d.LitellmParams.Model); n > 0 {
		return n, "llmq's table for " + d.LitellmParams.Model
	}
	return 0, ""
}
