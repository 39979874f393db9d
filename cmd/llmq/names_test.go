package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// TestUp_Names_AliasesAndWildcardsFromTheConfig: `llmq up -c` wires
// model_group_alias and wildcard model_names into the dispatcher and the
// gateway: model "openai/gpt-4o-mini" calls gpt-4o-mini, an alias reaches
// its group, /v1/models lists the alias that is not hidden.
func TestUp_Names_AliasesAndWildcardsFromTheConfig(t *testing.T) {
	t.Parallel()
	fake := openaitest.NewServer(t, openaitest.Config{})
	path := writeConfig(t, `model_list:
  - model_name: tier1
    litellm_params: {model: sim/small}
  - model_name: "openai/*"
    litellm_params: {model: "openai/*", api_base: `+fake.URL()+`}
router_settings:
  model_group_alias:
    fast: tier1
    quiet-fast: {model: tier1, hidden: true}
    mini: openai/gpt-4o-mini
`)
	u := startUp(t, "-c", path, "--gateway", "127.0.0.1:0")
	base := u.Stdout.await(t, gatewayRE, nil)[1]
	post := func(model string) (tier, model2 string) {
		t.Helper()
		resp, err := http.Post(base+"/chat/completions", "application/json",
			strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var c struct {
			Routing struct{ Tier, Model string }
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &c) != nil {
			t.Fatalf("%s: %d %s", model, resp.StatusCode, body)
		}
		return c.Routing.Tier, c.Routing.Model
	}
	for _, tt := range []struct{ asked, tier, model string }{
		{"openai/gpt-4o-mini", "openai/*", "gpt-4o-mini"},
		{"mini", "openai/*", "gpt-4o-mini"},
		{"fast", "tier1", "small"},
		{"quiet-fast", "tier1", "small"},
	} {
		if tier, model := post(tt.asked); tier != tt.tier || model != tt.model {
			t.Errorf("%s: answered by tier %q model %q, want %q %q", tt.asked, tier, model, tt.tier, tt.model)
		}
	}
	resp, err := http.Get(base + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Data []struct{ ID string } }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{"fast", "mini", "tier1"}) {
		t.Errorf("/v1/models: %q", ids)
	}
}
