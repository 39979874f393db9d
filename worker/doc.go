// Package worker runs one provider deployment: it takes the jobs a
// dispatcher forwards to its own subject, runs at most Concurrency of them
// at once against its provider, replies on each producer's inbox (streamed
// chunks or one chat.completion), and publishes heartbeats — its capacity,
// in-flight count, recent latency and state — that dispatchers route by.
package worker
