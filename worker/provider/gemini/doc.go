// Package gemini is the adapter for Google's Gemini API (Google AI Studio,
// v1beta): it turns an OpenAI-style chat request into a generateContent
// call, and the Gemini reply (or its server-sent-event stream) back into an
// OpenAI chat.completion with typed errors.
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
//   - Errors are {"error":{"code","message","status","details"}}; a 429 may
//     carry a google.rpc.RetryInfo retryDelay in its details.
//
// docs/providers/gemini.md has the full mapping tables. Package geminitest
// holds a strict fake of the API for tests.
package gemini
