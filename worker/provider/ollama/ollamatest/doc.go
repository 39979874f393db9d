// Package ollamatest is a strict fake Ollama host for tests: GET /api/tags,
// POST /api/chat streamed (NDJSON, the default) and not, POST /api/embed,
// Ollama's error bodies {"error": "..."} with its statuses, a slot/queue
// limit that answers 503 "server busy" like OLLAMA_NUM_PARALLEL and
// OLLAMA_MAX_QUEUE, per-token delays, injected failures, and counters of
// requests in flight so routing tests can assert concurrency without
// sleeping.
//
// With Config.MaxLoaded it models a GPU host (host.go): several models, at
// most MaxLoaded of them in memory, a LoadTime on a cold call (reported
// as load_duration), least-recently-used eviction of a model with no
// call in flight, Parallel slots per model, one FIFO of pending requests
// as in Ollama's scheduler, keep_alive (0 unloads after the call; a
// negative value keeps the model), and GET /api/ps listing the loaded
// models with their expires_at.
//
// Chats are checked as Ollama checks them: tools, tool calls with object
// arguments, images in base64, format, think. Tests script answers with
// tool calls (Config.Answer), models that only embed or cannot use tools.
//
// It is stricter than Ollama where Ollama would hide an adapter bug:
// unknown body fields and unknown options are a 400 (Ollama ignores them),
// roles other than system, user, assistant and tool are a 400 (Ollama's
// templates silently drop them), a tool result must name (tool_name) a
// function an earlier assistant message called, and an embed needs input.
//
// Usage is computed from the text: prompt_eval_count is the number of
// whitespace-separated words in all messages plus one per image,
// eval_count the number of words in the reply plus one per tool call;
// each streamed line carries one word (with the whitespace before it) or
// one tool call.
package ollamatest
