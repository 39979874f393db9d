// Package dispatcher routes jobs to workers. A dispatcher takes the jobs
// producers publish on <prefix>.jobs.<tier> (in a queue group, so several
// dispatchers share them with no coordination beyond NATS), learns the
// fleet from worker heartbeats, picks a worker with a free slot by the
// configured strategy and forwards the job, untouched, to that worker's
// own subject. The worker replies to the producer directly: a job costs
// three NATS messages. Jobs no worker can take at once wait in a bounded
// per-tier queue until a heartbeat reports a free slot, their deadline
// passes, or the queue is full — each of which ends in a typed reply.
//
// Every message is untrusted: any client of the NATS server may send it.
// A job loses the headers only llmq components set (headers.go) and is
// forwarded only with a reply subject broker.Subjects.CheckReply accepts
// (replies.go); its deadline is clamped. Beats are read with
// broker.Subjects.DecodeHeartbeat and may name new tiers and workers only
// within limits (heartbeat.go, tiers.go). Bounces are checked and clamped
// by parseBounce and honoured only within the job's retry budget and the
// tier's max_queue (bounce.go, retry.go). What is refused is counted in
// Stats.Dropped and logged at most once per few seconds (drops.go).
package dispatcher
