// Package ollama is the adapter for Ollama's native chat API
// (POST {api_base}/api/chat), where api_base is the host root such as
// http://localhost:11434.
//
// Ollama streams by default, so Complete always sends "stream": false and
// Stream sends "stream": true and reads the newline-delimited JSON reply
// line by line until the line with "done": true. OpenAI parameters map onto
// Ollama's options (max_tokens → num_predict, temperature, top_p, stop),
// the developer role becomes system, and Ollama's counters become usage
// (prompt_eval_count → prompt_tokens, eval_count → completion_tokens).
//
// Ollama needs no key. When Options.APIKey is set (a proxy in front of the
// host), it is sent as "Authorization: Bearer <key>" and never appears in
// errors. A full queue (503 "server busy …") is rate_limited with a default
// retry-after of one second, since Ollama sends no Retry-After header.
//
// CheckModel asks the host (GET /api/tags) whether the model is pulled, so
// a worker can refuse to start on a host that lacks it. Package ollamatest
// has a strict fake server for tests.
package ollama
