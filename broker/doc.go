// Package broker holds what llmq needs of NATS: the subject layout, a
// connection helper that takes the nats CLI's options (several URLs,
// credentials, TLS), and an embedded server for tests and `llmq up`.
package broker
