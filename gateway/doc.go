// Package gateway is llmq's OpenAI-compatible HTTP front door: POST
// /v1/chat/completions turns each request into a job on NATS (the request's
// "model" is the tier) and answers with the chat.completion, or with
// server-sent events ending in "data: [DONE]" when the request streams
// (tool calls as delta.tool_calls pieces); POST /v1/embeddings sends an
// embedding job and answers OpenAI's embeddings list; GET /v1/models lists
// the tiers. Errors are OpenAI's error objects with
// the HTTP status of the llmq error (429 with Retry-After when a tier is
// rate limited, overloaded or cooling down). Bearer keys are optional
// (general_settings.master_key). Official OpenAI clients work unchanged.
//
// A client that goes away cancels its job, streamed or not: a non-streamed
// job is sent cancellable (schema.HeaderControl) and the gateway publishes
// its cancel (broker.Subjects.Cancel); a stream has its control subject. A model that cannot be a tier (over broker.MaxTierLen
// bytes, spaces, wildcards) is answered 404 model_not_found before it
// becomes a subject. The HTTP server has read-header, read and idle
// time-outs and a connection cap (Config). Heartbeats are untrusted:
// decoded by broker.DecodeHeartbeat, and the workers and tiers they can
// add are capped (Config.MaxWorkers, Config.MaxTiers) and expire, so that
// /v1/models and the metrics' tier labels stay bounded.
package gateway
