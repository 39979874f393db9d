package config_test

import (
	"strings"
	"testing"

	"github.com/llmq/llmq/config"
)

const aliasConfig = `model_list:
  - model_name: tier1
    litellm_params: {model: openai/gpt-4o}
  - model_name: "*"
    litellm_params: {model: "*"}
  - model_name: "openai/*"
    litellm_params: {model: "openai/*"}
  - model_name: "anthropic/claude-*"
    litellm_params: {model: "anthropic/claude-*"}
router_settings:
  model_group_alias:
    fast: tier1
    secret-fast: {model: tier1, hidden: true}
    mini: openai/gpt-4o-mini
`

func TestModelGroupAlias_BothFormsAreRead(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, aliasConfig, noEnv)
	got := cfg.RouterSettings.ModelGroupAlias
	want := map[string]config.Alias{
		"fast":        {Model: "tier1"},
		"secret-fast": {Model: "tier1", Hidden: true},
		"mini":        {Model: "openai/gpt-4o-mini"},
	}
	if len(got) != len(want) {
		t.Fatalf("aliases = %+v, want %+v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("alias %q = %+v, want %+v", k, got[k], v)
		}
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %q", cfg.Warnings)
	}
	if a := cfg.Aliases(); a["secret-fast"] != "tier1" || a["mini"] != "openai/gpt-4o-mini" || len(a) != 3 {
		t.Errorf("Aliases() = %v", a)
	}
}

func TestRoutes_AliasThenNameThenMostSpecificPattern(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, aliasConfig, noEnv)
	for model, want := range map[string]string{
		"tier1":                      "tier1",
		"fast":                       "tier1",
		"secret-fast":                "tier1",
		"mini":                       "openai/*",
		"openai/gpt-4o-mini":         "openai/*",
		"anthropic/claude-3-5-haiku": "anthropic/claude-*",
		"anthropic/other":            "*",
		"llama3":                     "*",
	} {
		if got := cfg.Routes(model); got != want {
			t.Errorf("Routes(%q) = %q, want %q", model, got, want)
		}
	}
}

func TestModelGroupAlias_Problems(t *testing.T) {
	t.Parallel()
	cfg, ds := config.Check([]byte(`model_list:
  - model_name: tier1
    litellm_params: {model: openai/gpt-4o}
router_settings:
  model_group_alias:
    "bad name": tier1
    nothing: {hidden: true}
    nowhere: tier9
    tier1: tier1
    extra: {model: tier1, colour: blue}
    listed: [tier1]
`), noEnv)
	if cfg == nil {
		t.Fatal("no config")
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`line 6: router_settings.model_group_alias.bad name: alias "bad name" is not a name a job can ask for`,
		`line 7: router_settings.model_group_alias.nothing: alias "nothing" names no model`,
		`line 8: router_settings.model_group_alias.nowhere: alias "nowhere": "tier9" is no model_name of model_list`,
		`line 9: router_settings.model_group_alias.tier1: alias "tier1" has the name of a model_name`,
		`line 10: router_settings.model_group_alias.extra.colour: unknown key`,
		`line 11: router_settings.model_group_alias.listed: want a model_name, or a mapping {model: <model_name>, hidden: true}`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no diagnostic %q in:\n%s", want, all)
		}
	}
	errs := 0
	for _, d := range ds {
		if d.Severity == config.Error {
			errs++
		}
	}
	if errs != 3 {
		t.Errorf("%d errors, want 3 (bad name, no model, a list):\n%s", errs, all)
	}
}

func TestModelName_UnderscoreIsReserved(t *testing.T) {
	t.Parallel()
	msg := mustFail(t, `model_list:
  - model_name: _
    litellm_params: {model: openai/gpt-4o}
`, noEnv)
	wantContains(t, "error", msg, `model_list[0].model_name`, `"_" is reserved`, "Llmq-Model")
}

func TestModelGroupAlias_InLitellmSettingsIsWarnedToMove(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `model_list:
  - model_name: tier1
    litellm_params: {model: openai/gpt-4o}
litellm_settings:
  model_group_alias: {fast: tier1}
`, noEnv)
	if len(cfg.RouterSettings.ModelGroupAlias) != 0 {
		t.Errorf("aliases from litellm_settings: %v", cfg.RouterSettings.ModelGroupAlias)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "litellm_settings.model_group_alias: ignored: LiteLLM reads model_group_alias from router_settings only") {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}
