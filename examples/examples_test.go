package examples_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/examples"
)

const (
	geminiKey    = "gemini-key-EXAMPLES-5d1c9b"
	anthropicKey = "anthropic-key-EXAMPLES-8e2f4a"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := examples.Files.ReadFile(name)
	if err != nil {
		t.Fatalf("embedded %s: %v", name, err)
	}
	return b
}

func TestThreeTier_LoadsWithKeysFromLookup(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse(read(t, "three-tier.yaml"), env(map[string]string{
		"GEMINI_API_KEY": geminiKey, "ANTHROPIC_API_KEY": anthropicKey,
	}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings = %q, want none", cfg.Warnings)
	}
	want := []struct{ tier, model, base, key string }{
		{"tier1", "ollama/qwen2.5-coder:14b", "http://localhost:11434", ""},
		{"tier2", "gemini/gemini-1.5-flash", "", geminiKey},
		{"tier3", "claude-3-5-sonnet-20240620", "", anthropicKey},
	}
	if len(cfg.ModelList) != len(want) {
		t.Fatalf("got %d deployments, want %d", len(cfg.ModelList), len(want))
	}
	ids := map[string]bool{}
	for i, w := range want {
		t.Run(w.tier, func(t *testing.T) {
			t.Parallel()
			d := cfg.ModelList[i]
			p := d.LitellmParams
			if d.ModelName != w.tier || p.Model != w.model || p.APIBase != w.base || p.APIKey != w.key {
				t.Errorf("model_list[%d] = %s/%s/%s/key %q; want %s/%s/%s/key %q",
					i, d.ModelName, p.Model, p.APIBase, p.APIKey, w.tier, w.model, w.base, w.key)
			}
			if d.Err() != nil {
				t.Errorf("Err() = %v, want nil", d.Err())
			}
			if !strings.HasPrefix(d.ID, w.tier+"-") {
				t.Errorf("id = %q, want %s-<hash>", d.ID, w.tier)
			}
		})
		ids[cfg.ModelList[i].ID] = true
	}
	if len(ids) != 3 {
		t.Errorf("ids are not distinct: %v", ids)
	}
	rs := cfg.RouterSettings
	if rs.RoutingStrategy != config.LeastBusy {
		t.Errorf("routing_strategy = %q, want %q", rs.RoutingStrategy, config.LeastBusy)
	}
	if rs.NumRetries == nil || *rs.NumRetries != 2 || rs.AllowedFails == nil || *rs.AllowedFails != 3 {
		t.Errorf("num_retries, allowed_fails = %v, %v; want 2, 3", rs.NumRetries, rs.AllowedFails)
	}
	if rs.Timeout.D() != 60*time.Second || rs.CooldownTime.D() != 5*time.Second {
		t.Errorf("timeout, cooldown_time = %v, %v; want 60s, 5s", rs.Timeout.D(), rs.CooldownTime.D())
	}
	wantFB := []map[string][]string{{"tier1": {"tier2", "tier3"}}, {"tier2": {"tier3"}}}
	if !reflect.DeepEqual(rs.Fallbacks, wantFB) {
		t.Errorf("fallbacks = %v, want %v", rs.Fallbacks, wantFB)
	}
}

func TestThreeTier_KeyUnset_ParseSucceedsAndOnlyThatDeploymentHasErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr map[string]string // tier → variable named by its Err()
	}{
		{"GEMINI_API_KEY unset", map[string]string{"ANTHROPIC_API_KEY": anthropicKey},
			map[string]string{"tier2": "GEMINI_API_KEY"}},
		{"ANTHROPIC_API_KEY unset", map[string]string{"GEMINI_API_KEY": geminiKey},
			map[string]string{"tier3": "ANTHROPIC_API_KEY"}},
		{"both unset", nil,
			map[string]string{"tier2": "GEMINI_API_KEY", "tier3": "ANTHROPIC_API_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse(read(t, "three-tier.yaml"), env(tt.env))
			if err != nil {
				t.Fatalf("Parse must succeed with a deployment's key unset: %v", err)
			}
			if len(cfg.ModelList) != 3 {
				t.Fatalf("got %d deployments, want 3", len(cfg.ModelList))
			}
			for i := range cfg.ModelList {
				d := &cfg.ModelList[i]
				e := d.Err()
				name, bad := tt.wantErr[d.ModelName]
				if !bad {
					if e != nil {
						t.Errorf("%s: Err() = %v, want nil", d.ModelName, e)
					}
					continue
				}
				if e == nil {
					t.Errorf("%s: Err() = nil, want one naming %s", d.ModelName, name)
					continue
				}
				for _, sub := range []string{name, "litellm_params.api_key", fmt.Sprintf("model_list[%d]", i)} {
					if !strings.Contains(e.Error(), sub) {
						t.Errorf("%s: Err() %q does not contain %q", d.ModelName, e, sub)
					}
				}
				for _, k := range []string{geminiKey, anthropicKey} {
					if strings.Contains(e.Error(), k) {
						t.Errorf("%s: Err() leaks a key: %v", d.ModelName, e)
					}
				}
			}
			// The deployment can still be found, so a worker can report why
			// it cannot run.
			if _, err := cfg.Deployment("tier2"); err != nil {
				t.Errorf("Deployment(tier2): %v", err)
			}
		})
	}
}

func TestThreeTier_IDsDoNotDependOnKeys(t *testing.T) {
	t.Parallel()
	with, err := config.Parse(read(t, "three-tier.yaml"), env(map[string]string{
		"GEMINI_API_KEY": geminiKey, "ANTHROPIC_API_KEY": anthropicKey,
	}))
	if err != nil {
		t.Fatal(err)
	}
	without, err := config.Parse(read(t, "three-tier.yaml"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i := range with.ModelList {
		if a, b := with.ModelList[i].ID, without.ModelList[i].ID; a != b {
			t.Errorf("model_list[%d]: id %q with keys, %q without", i, a, b)
		}
	}
}

func TestDemo_LoadsWithNoWarningsAndNoKeys(t *testing.T) {
	t.Parallel()
	if !bytes.Equal(examples.Demo(), read(t, "demo.yaml")) {
		t.Error("Demo() differs from the embedded demo.yaml")
	}
	cfg, err := config.Parse(examples.Demo(), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings = %q, want none", cfg.Warnings)
	}
	want := []struct {
		tier, id string
		ttft     time.Duration
		tps      float64
		parallel int
	}{
		{"tier1", "tier1-gpu-a", 20 * time.Millisecond, 400, 4},
		{"tier1", "tier1-gpu-b", 40 * time.Millisecond, 200, 2},
		{"tier2", "tier2-flash", 50 * time.Millisecond, 800, 16},
		{"tier3", "tier3-sonnet", 100 * time.Millisecond, 300, 16},
		{"embed", "embed-sim", 5 * time.Millisecond, 0, 8},
	}
	if len(cfg.ModelList) != len(want) {
		t.Fatalf("got %d deployments, want %d", len(cfg.ModelList), len(want))
	}
	for i, w := range want {
		d := cfg.ModelList[i]
		s := d.LitellmParams.Sim
		if d.ModelName != w.tier || d.ID != w.id || s.TTFT.D() != w.ttft || s.TokensPerSecond != w.tps || s.Parallel != w.parallel {
			t.Errorf("model_list[%d] = %s %s sim{%v %v %d}; want %s %s sim{%v %v %d}", i,
				d.ModelName, d.ID, s.TTFT.D(), s.TokensPerSecond, s.Parallel, w.tier, w.id, w.ttft, w.tps, w.parallel)
		}
		if d.Err() != nil {
			t.Errorf("%s: Err() = %v", d.ID, d.Err())
		}
		if !strings.HasPrefix(d.LitellmParams.Model, "sim/") {
			t.Errorf("%s: model %q is not simulated", d.ID, d.LitellmParams.Model)
		}
	}
	if m := cfg.ModelList[4].ModelInfo.Mode; m != "embedding" {
		t.Errorf("embed tier: mode %q, want embedding", m)
	}
	if cfg.RouterSettings.RoutingStrategy != config.ShortestExpectedDelay || cfg.RouterSettings.Timeout.D() != 60*time.Second {
		t.Errorf("router_settings = %s, %v; want shortest-expected-delay, 60s", cfg.RouterSettings.RoutingStrategy, cfg.RouterSettings.Timeout.D())
	}
	if _, err := cfg.Deployment("tier1"); err == nil {
		t.Error("Deployment(tier1) is ambiguous in the demo (two GPUs) but did not fail")
	}
	if d, err := cfg.Deployment("tier3"); err != nil || d.ID != "tier3-sonnet" {
		t.Errorf("Deployment(tier3) = %v, %v; want tier3-sonnet", d, err)
	}
}

func TestExamples_EveryFileParsesWithoutWarnings(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(examples.Files, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 2 {
		t.Fatalf("embedded examples = %v, want at least demo.yaml and three-tier.yaml", names)
	}
	anyVar := func(name string) (string, bool) { return "value-of-" + name, true }
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := read(t, name)
			onDisk, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, onDisk) {
				t.Errorf("embedded %s differs from the file", name)
			}
			cfg, err := config.Parse(b, anyVar)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(cfg.Warnings) != 0 {
				t.Errorf("warnings = %q, want none", cfg.Warnings)
			}
			for i := range cfg.ModelList {
				if e := cfg.ModelList[i].Err(); e != nil {
					t.Errorf("model_list[%d].Err() = %v", i, e)
				}
			}
		})
	}
}
