// Package ollama is the adapter for Ollama's native chat API
// (POST {api_base}/api/chat), where api_base is the host root such as
// http://localhost:11434.
//
// Ollama streams by default, so Complete always sends "stream": false and
// Stream sends "stream": true and reads the newline-delimited JSON reply
// line by line until the line with "done": true. OpenAI parameters map onto
// Ollama's options (max_tokens → num_predict, temperature, top_p, stop,
// seed, presence_penalty, frequency_penalty), the developer role becomes
// system, and Ollama's counters become usage (prompt_eval_count →
// prompt_tokens, eval_count → completion_tokens).
//
// Tools go in OpenAI's shape; Ollama's tool calls (arguments as objects,
// no ids) come back in OpenAI's (arguments as strings, ids derived from
// each call so a streamed and a whole reply agree), and tool results carry
// the called function's name (tool_name). response_format becomes format
// ("json" or the schema), image parts become base64 images (URLs fetched
// by the worker), reasoning_effort becomes think. Ollama has no n,
// logprobs mapping, forced tool_choice or parallel_tool_calls: false;
// these are bad_request unless drop_params drops them.
//
// Embed embeds texts with POST {api_base}/api/embed.
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
