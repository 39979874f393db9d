package main

import (
	"testing"

	"github.com/llmq/llmq/config"
)

func TestDispatcherConfig_TakesAffinityAndStrategyFromRouterSettings(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`model_list:
  - model_name: chat
    litellm_params: {model: sim/a}
router_settings:
  routing_strategy: shortest-expected-delay
  llmq_conversation_affinity: true
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var f dispatcherFlags
	dc := f.dispatcherConfig(cfg)
	if !dc.Affinity || dc.Strategy != config.ShortestExpectedDelay {
		t.Fatalf("affinity %v, strategy %q: want true, shortest-expected-delay", dc.Affinity, dc.Strategy)
	}
}
