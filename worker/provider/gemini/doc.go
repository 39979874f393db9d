// Package gemini is the adapter for Google's Gemini API (Google AI Studio,
// v1beta): it turns an OpenAI-style chat request — tools, images, JSON
// output and sampling parameters included — into a generateContent call,
// and the Gemini reply (or its server-sent-event stream) back into an
// OpenAI chat.completion with typed errors; embedding jobs into
// batchEmbedContents calls.
//
// Wire facts the adapter relies on:
//
//   - POST {api_base}/v1beta/models/{model}:generateContent, and
//     :streamGenerateContent?alt=sse for streams, where every SSE data field
//     is a whole GenerateContentResponse. api_base is the host root
//     (default https://generativelanguage.googleapis.com).
//   - The key travels in the x-goog-api-key header, never in the URL.
//   - Roles: assistant becomes "model"; system and developer messages become
//     systemInstruction; consecutive messages of one role are merged into
//     one content with several parts.
//   - Tools are functionDeclarations whose parameters are Gemini's Schema
//     (an OpenAPI 3.0 subset): JSON Schemas are converted (type lists and
//     null branches to nullable, local $refs inlined, propertyOrdering from
//     the order written, unknown keywords dropped). The model's
//     functionCall parts become tool_calls (arguments as JSON text, ids
//     generated when Gemini gives none, thought signatures carried in the
//     id); tool messages go back as functionResponse parts of a user turn.
//   - Embeddings: POST {api_base}/v1beta/models/{model}:batchEmbedContents,
//     at most 100 texts a call; no token counts come back.
//   - Errors are {"error":{"code","message","status","details"}}; a 429 may
//     carry a google.rpc.RetryInfo retryDelay in its details.
//
// docs/providers/gemini.md has the full mapping tables. Package geminitest
// holds a strict fake of the API for tests.
package gemini
