package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/config"
)

// The router features of issue 12 are acted on: their keys load without
// a warning, into fields.
func TestParse_RouterFeatureKeys_AreUsedNotWarned(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `model_list:
  - model_name: tier1
    litellm_params:
      model: openai/gpt-4o
      api_key: k
      tags: [paid, default]
      num_retries: 4
      max_retries: 1
      cooldown_time: 30
    model_info:
      max_input_tokens: 9000
      base_model: gpt-4o-mini
      input_cost_per_token: 0.000001
router_settings:
  routing_strategy: latency-based-routing
  routing_strategy_args: {ttl: 120, lowest_latency_buffer: 0.5, max_latency_list_size: 10}
  allowed_fails_policy: {RateLimitErrorAllowedFails: 10, TimeoutErrorAllowedFails: 0, NotFoundErrorAllowedFails: 1}
  enable_pre_call_checks: true
  enable_tag_filtering: true
  tag_filtering_match_any: false
  default_max_parallel_requests: 7
  disable_cooldowns: true
`, noEnv)
	if len(cfg.Warnings) != 0 {
		t.Fatalf("warnings = %q, want none", cfg.Warnings)
	}
	d, rs := cfg.ModelList[0], cfg.RouterSettings
	lp := d.LitellmParams
	if !slices.Equal(lp.Tags, []string{"paid", "default"}) || lp.NumRetries == nil || *lp.NumRetries != 4 ||
		lp.MaxRetries == nil || *lp.MaxRetries != 1 || lp.CooldownTime.D() != 30*time.Second {
		t.Errorf("litellm_params = tags %q, num_retries %v, max_retries %v, cooldown_time %v", lp.Tags, lp.NumRetries, lp.MaxRetries, lp.CooldownTime.D())
	}
	if d.ModelInfo.MaxInputTokens != 9000 || d.ModelInfo.BaseModel != "gpt-4o-mini" || lp.InputCostPerToken != 0.000001 {
		t.Errorf("model_info = %+v, input cost %v", d.ModelInfo, lp.InputCostPerToken)
	}
	if rs.RoutingStrategyArgs.TTL.D() != 120*time.Second || rs.RoutingStrategyArgs.MaxLatencyListSize != 10 ||
		rs.AllowedFailsPolicy["TimeoutErrorAllowedFails"] != 0 || rs.AllowedFailsPolicy["RateLimitErrorAllowedFails"] != 10 ||
		!rs.EnablePreCallChecks || !rs.EnableTagFiltering || rs.TagFilteringMatchAny == nil || *rs.TagFilteringMatchAny ||
		rs.DefaultMaxParallelRequests != 7 || !rs.DisableCooldowns {
		t.Errorf("router_settings = %+v", rs)
	}
	if n, src := d.InputWindow(); n != 9000 || src != "model_info.max_input_tokens" {
		t.Errorf("InputWindow = %d from %q, want model_info's 9000", n, src)
	}
}

func TestParse_AllowedFailsPolicy_UnknownAndUselessKeysWarned(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, oneDeployment+`router_settings:
  allowed_fails_policy:
    RateLimitErrorAllowedFails: 2
    BadRequestErrorAllowedFails: 5
    RateLimitErrorRetries: 1
    TimeoutErrorAllowedFails: -1
`, noEnv)
	got := strings.Join(cfg.Warnings, "\n")
	wantContains(t, "warnings", got,
		"line 7: router_settings.allowed_fails_policy.BadRequestErrorAllowedFails: has no effect",
		"line 8: router_settings.allowed_fails_policy.RateLimitErrorRetries: unknown key",
		"line 9: router_settings.allowed_fails_policy.TimeoutErrorAllowedFails: -1 is negative")
	if len(cfg.Warnings) != 3 {
		t.Errorf("warnings = %q, want 3", cfg.Warnings)
	}
}

func TestContextWindow_MatchesVersionsAndPrefixes(t *testing.T) {
	t.Parallel()
	for model, want := range map[string]int{
		"gpt-4o":                               128000,
		"openai/gpt-4o-2024-08-06":             128000,
		"gpt-4o-mini-2024-07-18":               128000,
		"openrouter/openai/gpt-4.1-mini":       1047576,
		"gpt-4":                                8192,
		"gpt-4-0613":                           8192,
		"gpt-4-32k":                            32768,
		"gpt-4-1106-preview":                   128000,
		"anthropic/claude-3-5-sonnet-20241022": 200000,
		"claude-3-7-sonnet-latest":             200000,
		"vertex_ai/claude-3-5-sonnet@20240620": 200000,
		"claude-opus-4-1-20250805":             200000,
		"gemini/gemini-1.5-pro-002":            2097152,
		"gemini-2.0-flash-lite":                1048576,
		"deepseek/deepseek-chat":               65536,
		// Unknown: no pre-call check (a local model's window is its
		// server's setting).
		"ollama/llama3":      0,
		"gpt-4o-audio-x":     0,
		"gpt-4omni":          0,
		"sim/tiny":           0,
		"gemini-2.5-flash-x": 0,
	} {
		if got := config.ContextWindow(model); got != want {
			t.Errorf("ContextWindow(%q) = %d, want %d", model, got, want)
		}
	}
	d := config.Deployment{LitellmParams: config.LitellmParams{Model: "azure/my-deployment"}, ModelInfo: config.ModelInfo{BaseModel: "gpt-4o"}}
	if n, src := d.InputWindow(); n != 128000 || !strings.Contains(src, "base_model") {
		t.Errorf("azure deployment with base_model: InputWindow = %d from %q", n, src)
	}
}
