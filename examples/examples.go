// Package examples ships llmq's example configurations: demo.yaml (the
// simulated fleet `llmq up` runs with no -c) and three-tier.yaml (the
// seed's Ollama / Gemini / Claude tiers).
package examples

import "embed"

// Files holds the example configurations by file name.
//
//go:embed *.yaml
var Files embed.FS

// Demo returns demo.yaml.
func Demo() []byte {
	b, err := Files.ReadFile("demo.yaml")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	return b
}
