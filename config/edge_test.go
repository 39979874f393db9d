package config_test

import (
	"testing"
)

func TestParse_DropParams_LitellmSettingsIsTheDefaultADeploymentMayOverride(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `model_list:
  - model_name: a
    litellm_params: {model: sim/a}
  - model_name: b
    litellm_params: {model: sim/b, drop_params: false}
litellm_settings:
  drop_params: true
`, noEnv)
	if dp := cfg.ModelList[0].LitellmParams.DropParams; dp == nil || !*dp {
		t.Errorf("deployment a: drop_params %v, want true from litellm_settings", dp)
	}
	if dp := cfg.ModelList[1].LitellmParams.DropParams; dp == nil || *dp {
		t.Errorf("deployment b: drop_params %v, want its own false", dp)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %q: drop_params is used, not warned about", cfg.Warnings)
	}
	cfg = mustParse(t, "model_list: [{model_name: a, litellm_params: {model: sim/a}}]\n", noEnv)
	if dp := cfg.ModelList[0].LitellmParams.DropParams; dp != nil {
		t.Errorf("drop_params %v with none written, want unset (false)", *dp)
	}
}

func TestParse_MaxImageBytes_ReachesEveryDeploymentAndNegativeFails(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `model_list:
  - model_name: a
    litellm_params: {model: sim/a}
llmq_settings:
  max_image_bytes: 1048576
`, noEnv)
	if got := cfg.ModelList[0].MaxImageBytes; got != 1<<20 {
		t.Errorf("MaxImageBytes %d, want 1 MiB", got)
	}
	msg := mustFail(t, `model_list:
  - model_name: a
    litellm_params: {model: sim/a}
llmq_settings:
  max_image_bytes: -1
`, noEnv)
	wantContains(t, "error", msg, "line 5", "llmq_settings.max_image_bytes", "must be 0")
}

func TestParse_EmbeddingMode_LoadsWithoutWarning(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `model_list:
  - model_name: emb
    litellm_params: {model: ollama/nomic-embed-text}
    model_info: {mode: embedding}
`, noEnv)
	if cfg.ModelList[0].ModelInfo.Mode != "embedding" || len(cfg.Warnings) != 0 {
		t.Fatalf("mode %q, warnings %q", cfg.ModelList[0].ModelInfo.Mode, cfg.Warnings)
	}
}
