// Package cohere is the llmq adapter for Cohere's own chat API, v2:
// POST {api_base}/v2/chat with "Authorization: Bearer <api_key>", the
// body {model, messages[{role, content, tool_calls, tool_call_id}],
// tools, strict_tools, tool_choice, response_format, max_tokens,
// temperature, p, stop_sequences, seed, penalties, logprobs, stream}, and
// a reply {id, finish_reason, message{role, content[{type: "text", text}],
// tool_calls}, usage{billed_units, tokens}, logprobs}. A streamed call
// reads the server-sent events message-start, content-delta (the text),
// tool-call-start and tool-call-delta (tool-call pieces) and message-end
// (finish reason and usage). What v2 cannot express (a named tool_choice,
// parallel_tool_calls false, n, top_logprobs, reasoning_effort) is a
// bad_request, or dropped with Options.DropParams.
//
// api_base is the host root (default https://api.cohere.com); a base
// ending in /v1, /v2, /v1/chat or /v2/chat, as LiteLLM configurations
// sometimes write it, is accepted. Errors become *schema.Error values with
// the codes every adapter uses; docs/providers/cohere.md holds the whole
// mapping. Package coheretest has a strict fake server for tests.
package cohere
