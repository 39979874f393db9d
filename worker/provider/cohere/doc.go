// Package cohere is the llmq adapter for Cohere's own chat API, v2:
// POST {api_base}/v2/chat with "Authorization: Bearer <api_key>", the
// body {model, messages[{role, content}], max_tokens, temperature, p,
// stop_sequences, stream}, and a reply {id, finish_reason,
// message{role, content[{type: "text", text}]}, usage{billed_units,
// tokens}}. A streamed call reads the server-sent events message-start,
// content-delta (the text) and message-end (finish reason and usage).
//
// api_base is the host root (default https://api.cohere.com); a base
// ending in /v1, /v2, /v1/chat or /v2/chat, as LiteLLM configurations
// sometimes write it, is accepted. Errors become *schema.Error values with
// the codes every adapter uses; docs/providers/cohere.md holds the whole
// mapping. Package coheretest has a strict fake server for tests.
package cohere
