// Package openai is the llmq adapter for the OpenAI chat-completions API
// and the servers that speak it: OpenAI itself, vLLM, LM Studio, the
// llama.cpp server, OpenRouter, Groq and others.
//
// The adapter posts to {api_base}/chat/completions, where api_base includes
// the version path ("http://gpu-1:8000/v1"; default
// https://api.openai.com/v1), with "Authorization: Bearer <api_key>" when a
// key is set. A key is required for api.openai.com and optional elsewhere,
// since a local vLLM or llama.cpp server usually needs none.
//
// Every request field of the schema is sent as the producer wrote it —
// tools, tool_choice, tool messages, image parts, response_format, seed,
// penalties, logprobs, n, reasoning_effort — since the schema's shapes are
// OpenAI's. Replies keep every choice, tool calls and logprobs; streamed
// tool-call pieces are emitted in OpenAI's chunk shape and assembled into
// the returned response. Embed posts to {api_base}/embeddings.
//
// Streams ask for stream_options.include_usage so that the last chunk
// carries the token counts. Errors, whether in the HTTP status or inside an
// open stream, become *schema.Error values; docs/providers/openai.md holds
// the full mapping. Package openaitest has a strict fake server for tests.
//
// NewEndpoint builds the same adapter for a service that speaks this API
// under its own URL and credentials; package azure uses it for Azure
// OpenAI.
package openai
