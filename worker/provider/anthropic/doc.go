// Package anthropic is the llmq adapter for Anthropic's Messages API
// (POST {api_base}/v1/messages). It turns an OpenAI-shaped schema.Request
// into a Messages request — system and developer messages become the
// top-level system prompt, the output limit defaults to DefaultMaxTokens,
// tools and tool calls become tool_use blocks and tool messages a user
// turn of tool_result blocks, images image blocks, response_format the
// forced json_tool_call tool (JSONToolName), reasoning_effort a thinking
// budget — and maps the reply, the server-sent event stream (tool_use
// blocks as OpenAI tool-call pieces) and Anthropic's error bodies back
// onto schema.Response and typed *schema.Error values. Parameters the API
// has no counterpart for (seed, penalties, logprobs, n > 1) are refused,
// or dropped with Options.DropParams.
//
// The api_base is the host root ("https://api.anthropic.com", the default);
// a base that already ends in "/v1" or "/v1/messages", as LiteLLM configs
// often do, is accepted too. See docs/providers/anthropic.md for the
// mapping tables.
//
// Package anthropictest holds a strict fake of the API for tests.
package anthropic
