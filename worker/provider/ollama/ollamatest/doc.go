// Package ollamatest is a strict fake Ollama host for tests: GET /api/tags,
// POST /api/chat streamed (NDJSON, the default) and not, Ollama's error
// bodies {"error": "..."} with its statuses, a slot/queue limit that
// answers 503 "server busy" like OLLAMA_NUM_PARALLEL and OLLAMA_MAX_QUEUE,
// per-token delays, injected failures, and counters of requests in flight
// so routing tests can assert concurrency without sleeping.
//
// It is stricter than Ollama in three places, to catch adapter bugs that
// Ollama would hide: unknown body fields and unknown options are a 400
// (Ollama ignores them), and roles other than system, user, assistant and
// tool are a 400 (Ollama's templates silently drop them).
//
// Usage is computed from the text: prompt_eval_count is the number of
// whitespace-separated words in all messages, eval_count the number of
// words in the reply; each streamed line carries one word (with the
// whitespace before it).
package ollamatest
