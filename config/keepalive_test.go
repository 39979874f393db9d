package config_test

import (
	"strings"
	"testing"
)

func TestParse_KeepAlive_KeptForOllamaAndWarnedElsewhere(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `model_list:
  - model_name: local
    litellm_params: {model: ollama/llama3, keep_alive: -1}
  - model_name: chat
    litellm_params: {model: ollama_chat/llama3, keep_alive: "30m"}
  - model_name: cloud
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-x
      keep_alive: 5m
`, noEnv)
	if got := cfg.ModelList[0].LitellmParams.KeepAlive; got != "-1" {
		t.Errorf("keep_alive -1 read as %q", got)
	}
	if got := cfg.ModelList[1].LitellmParams.KeepAlive; got != "30m" {
		t.Errorf("keep_alive 30m read as %q", got)
	}
	if len(cfg.Warnings) != 1 || !strings.HasPrefix(cfg.Warnings[0], "line 10: model_list[2].litellm_params.keep_alive: ignored: keep_alive is sent to Ollama hosts only") {
		t.Errorf("warnings %q, want one for the openai deployment's keep_alive", cfg.Warnings)
	}
}
