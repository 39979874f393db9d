// Package bench measures llmq on one machine and writes the numbers down.
//
// Run drives five measurements and returns Results; Results.Markdown
// renders them as BENCHMARKS.md:
//
//   - added latency: the same chat completions at fixed open-loop rates,
//     sent straight to a fake OpenAI-compatible server and through llmq
//     (producer → NATS → dispatcher → worker → the same server → inbox),
//     with the real llmq binary as separate processes and NATS in a
//     process of its own, beside a raw NATS request-reply echo;
//   - throughput ceiling: completions per second at rising concurrency
//     with an instant simulated provider, against the echo, with a CPU
//     profile split by component (NATS, codec, dispatcher, worker);
//   - routing quality: a fleet of simulated Ollama hosts of different
//     slots and speeds, each with a queue limit that answers 503, at 50,
//     80 and 95% of capacity, for each strategy, with one and with two
//     dispatchers, beside oracles that join the shortest queue with
//     perfect, instant knowledge;
//   - memory: dispatcher and worker RSS idle and with many jobs in flight;
//   - gateway: one chat completion over HTTP to a mock OpenAI upstream,
//     direct, through a bare httputil.ReverseProxy, through `llmq up
//     --gateway` and through llmq as four processes: CPU per request of
//     each hop's processes, peak rate at 64 clients, added latency at one
//     client and at a fixed rate, and a CPU profile of llmq up assembled
//     in a helper process (issue 14).
//
// The pieces work alone too: OpenLoop and ClosedLoop generate load,
// OpenAIServer is a fake OpenAI-compatible server that costs microseconds
// a call, OllamaHost a simulated Ollama host, Echo the raw NATS baseline,
// SimulateJSQ and SimulateECT the routing oracles. Everything runs on
// loopback and every run is bounded in count and time.
//
// The command bench/cmd/llmq-bench (`make bench`) runs the full
// measurement (`make bench-gateway` the gateway section alone, merged into
// the file with MergeMarkdown); the package's tests run the same harness with small
// numbers, asserting that it works, never how fast.
package bench
