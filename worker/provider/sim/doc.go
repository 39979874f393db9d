// Package sim is the built-in simulator provider (model "sim/<name>"): a
// deployment with a set time to first token, generation speed, parallel
// slots and error rate, for demos, tests and benchmarks without a GPU or a
// key. Its replies are deterministic words derived from the prompt; it
// calls tools, answers structured outputs and embeds texts
// deterministically too (tools.go, embed.go), so a whole tool loop runs
// against it.
package sim
