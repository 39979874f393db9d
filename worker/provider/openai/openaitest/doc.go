// Package openaitest is a strict fake of the OpenAI chat-completions API
// for tests: POST /v1/chat/completions, non-streamed and streamed (SSE
// chat.completion.chunk events ending in data: [DONE], with the usage chunk
// of stream_options.include_usage), and POST /v1/embeddings.
//
// It checks what the real API checks and answers violations with the
// API's status and {"error":{message, type, param, code}} body: the path
// and method, the Bearer key (when Config.Key is set), the JSON content
// type, unknown request arguments, the model, a non-empty messages array
// with roles system, developer, user, assistant or tool, text and image
// content (images in user messages only, fetched when given by URL), tool
// calls answered in order by tool messages, tool declarations, tool_choice,
// response_format, the ranges of max_tokens, max_completion_tokens,
// temperature, top_p, the penalties, n and top_logprobs, at most four stop
// sequences, and stream_options only with stream: true. It accepts only
// the arguments it implements; any other is "Unrecognized request
// argument". Config.Answers scripts tool calls, JSON and other replies.
//
// Answers are deterministic: the reply is Config.Reply, or "echo: " and
// the last user message; a token is a whitespace-separated word, so
// prompt_tokens counts the words of all messages and completion_tokens
// those of the reply. max_tokens truncates the reply (finish_reason
// "length") and a stop sequence cuts it.
//
// With Config.Azure set the fake is Azure OpenAI instead (see Azure): its
// deployment path, api-version, api-key or Entra ID token, and its own
// 401 and 404 bodies.
package openaitest
