// Package batch runs durable batch pipelines on NATS JetStream: a
// producer submits thousands of jobs at once, batch runners feed them to
// the fleet on the capacity interactive jobs leave free, and every job
// gets exactly one stored result, through crashes of workers,
// dispatchers, runners and NATS servers.
//
// # What llmq keeps in JetStream
//
// For subject prefix P (default "llm") and T = P with characters other
// than letters, digits, '-' and '_' replaced by '_':
//
//	stream T_batch_jobs      subjects P.batch.jobs.<batch>.<key>.<tier>
//	                         one message per job: the chat-completion body
//	                         (JSON), headers Llmq-Batch-Id, Llmq-Custom-Id,
//	                         Llmq-Batch-Tier; limits retention, kept until
//	                         the batch is deleted (or StoreConfig.MaxAge)
//	stream T_batch_results   subjects P.batch.results.<batch>.<key>
//	                         one message per job: its OpenAI batch output
//	                         line; header Llmq-Result-Status ok|error
//	                         and P.batch.failed.<batch>.<key>: an empty
//	                         marker per failed job, to count failures
//	KV bucket T_batches      key <batch>: Meta (created, cancelled) as JSON
//	consumers on T_batch_jobs  runner_<tier token>_<hash>: one durable pull
//	                         consumer per tier, filter P.batch.jobs.*.*.<tier>,
//	                         shared by every runner
//	subject P.batch.runners  core NATS: runners answer with a RunnerReport
//
// <key> is the custom_id in unpadded base64url, so that any custom_id is
// one subject token. Both streams store at most one message per subject:
// every publish carries Nats-Expected-Last-Subject-Sequence: 0, so the
// server itself refuses a second copy of a job or a second result. That is
// what makes submitting twice safe (the duplicates are counted and
// dropped, without a time window), and what makes the result of a job
// unique even when two runners ran it (after a crash): the first result
// stored wins.
//
// # How a runner handles a job
//
// A Runner learns the tiers and their capacity from the workers'
// heartbeats and, per tier, pulls only as many jobs as it may run (twice
// the slots that tier's workers leave to batch jobs, or a fixed
// Concurrency), so a 100k-job batch never floods a dispatcher's queue. For
// each job it: skips it if the batch is cancelled; acks it at once if a
// result is already stored (a crash between storing and acking, or a
// resubmission); sends it with client.Complete and header Llmq-Priority:
// batch, so dispatchers apply the same strategies, retries, fallbacks and
// cooldowns and run it only on capacity interactive jobs leave (keeping
// one slot per worker free for them); keeps the delivery alive with
// in-progress acks while it runs; stores the result; and only then acks.
// A retryable failure is handed back with a growing delay; after
// MaxDeliver deliveries (or a non-retryable error) the failure itself is
// the result — a dead letter that is counted, not a job that loops.
//
// Delivery is at least once (a job whose runner, dispatcher or worker died
// may be called twice), results are exactly once.
//
// # What a runner trusts
//
// Nothing it receives: heartbeats go through broker.DecodeHeartbeat (a
// malformed one is dropped, capacity is clamped), it follows at most
// MaxWorkers workers and MaxTiers tiers (a tier's loop ends once its
// workers are gone), runs at most RunnerConfig.MaxInFlight jobs and pulls
// at most 256 at a time whatever the beats add up to; a job record whose
// headers are not the batch id, custom_id and tier its subject is made of
// is terminated without running; a status request is answered only on a
// subject a reply may be. Refusals are counted in RunnerReport.
package batch
