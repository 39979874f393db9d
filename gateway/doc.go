// Package gateway is llmq's OpenAI-compatible HTTP front door: POST
// /v1/chat/completions turns each request into a job on NATS (the request's
// "model" is the tier) and answers with the chat.completion, or with
// server-sent events ending in "data: [DONE]" when the request streams;
// GET /v1/models lists the tiers. Errors are OpenAI's error objects with
// the HTTP status of the llmq error (429 with Retry-After when a tier is
// rate limited, overloaded or cooling down). Bearer keys are optional
// (general_settings.master_key). Official OpenAI clients work unchanged.
package gateway
