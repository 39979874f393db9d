// Package sse reads Server-Sent Events streams, the framing Gemini,
// Anthropic and OpenAI-compatible servers stream completions in.
package sse
