package config_test

import (
	"fmt"
	"log"

	"github.com/llmq/llmq/config"
)

// Parse reads a LiteLLM-style config.yaml; os.environ/NAME values are
// resolved with the lookup function (os.LookupEnv in config.Load).
func ExampleParse() {
	const yml = `
model_list:
  - model_name: tier1
    litellm_params:
      model: ollama/qwen2.5-coder:14b
      api_base: http://localhost:11434
  - model_name: tier2
    litellm_params:
      model: gemini/gemini-1.5-flash
      api_key: os.environ/GEMINI_API_KEY
router_settings:
  routing_strategy: latency-based-routing
`
	lookup := func(name string) (string, bool) {
		if name == "GEMINI_API_KEY" {
			return "example-key", true
		}
		return "", false
	}
	cfg, err := config.Parse([]byte(yml), lookup)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range cfg.ModelList {
		fmt.Println(d.ModelName, d.LitellmParams.Model)
	}
	fmt.Println("strategy:", cfg.RouterSettings.RoutingStrategy)
	// Output:
	// tier1 ollama/qwen2.5-coder:14b
	// tier2 gemini/gemini-1.5-flash
	// strategy: latency-based
}
