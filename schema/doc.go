// Package schema defines llmq's wire contract: the job a producer sends
// (an OpenAI chat-completions request), the reply a worker sends back (an
// OpenAI chat.completion object plus a routing block), streamed chunks, the
// typed error every failure ends in, worker heartbeats, and the codec that
// turns them into bytes (msgpack by default, JSON on request).
//
// The contract is documented for producers in other languages in
// docs/protocol.md; this package is its Go form.
package schema
