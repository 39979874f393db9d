// Package anthropic is the llmq adapter for Anthropic's Messages API
// (POST {api_base}/v1/messages). It turns an OpenAI-shaped schema.Request
// into a Messages request — system and developer messages become the
// top-level system prompt, the output limit defaults to DefaultMaxTokens —
// and maps the reply, the server-sent event stream and Anthropic's error
// bodies back onto schema.Response and typed *schema.Error values.
//
// The api_base is the host root ("https://api.anthropic.com", the default);
// a base that already ends in "/v1" or "/v1/messages", as LiteLLM configs
// often do, is accepted too. See docs/providers/anthropic.md for the
// mapping tables.
//
// Package anthropictest holds a strict fake of the API for tests.
package anthropic
