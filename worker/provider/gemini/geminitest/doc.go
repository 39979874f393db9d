// Package geminitest is a strict fake of the Gemini API (v1beta
// generateContent, streamGenerateContent and batchEmbedContents) for tests
// of the gemini adapter and of anything built on it.
//
// The fake checks what the real API checks — path and method, the
// x-goog-api-key header, the JSON body's field names, roles, empty contents
// and parts, generation parameters, function declarations and their
// Schemas, the function calling config, the order of function call and
// response turns, inline images, embedding requests — and answers
// violations with the API's
// status and {"error":{code,message,status,details}} body. It answers in the
// documented shapes: a GenerateContentResponse, or for
// :streamGenerateContent?alt=sse one whole response per SSE data event.
// Usage counts whitespace-separated words, so tests can predict it. Tests
// script function calls (Config.Calls); the fake also answers with
// logprobs, several candidates and JSON shaped by a responseSchema when
// asked, and with deterministic embeddings (Vector).
//
// One deliberate difference: the real API also accepts the key as a ?key=
// query parameter; the fake refuses it, because llmq never puts keys in
// URLs.
package geminitest
