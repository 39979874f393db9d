package config_test

import "testing"

// TestLimits_WhereLiteLLMReadsThem: rpm and tpm are read on the entry,
// then in litellm_params, then in model_info, as LiteLLM reads them.
func TestLimits_WhereLiteLLMReadsThem(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `model_list:
  - model_name: a
    rpm: 10
    litellm_params: {model: sim/a, rpm: 20, tpm: 3000}
  - model_name: b
    litellm_params: {model: sim/b}
    model_info: {id: b1, rpm: 7, tpm: 900.0}
  - model_name: c
    litellm_params: {model: sim/c}
`, noEnv)
	for i, want := range [][2]int64{{10, 3000}, {7, 900}, {0, 0}} {
		if rpm, tpm := cfg.ModelList[i].Limits(); rpm != want[0] || tpm != want[1] {
			t.Errorf("%s: rpm %d tpm %d, want %d %d", cfg.ModelList[i].ModelName, rpm, tpm, want[0], want[1])
		}
	}
	for _, w := range cfg.Warnings {
		t.Errorf("unexpected warning: %s", w)
	}
}
