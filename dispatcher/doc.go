// Package dispatcher routes jobs to workers. A dispatcher takes the jobs
// producers publish on <prefix>.jobs.<tier> (in a queue group, so several
// dispatchers share them with no coordination beyond NATS), learns the
// fleet from worker heartbeats, picks a worker with a free slot by the
// configured strategy and forwards the job, untouched, to that worker's
// own subject. The worker replies to the producer directly: a job costs
// three NATS messages. Jobs no worker can take at once wait in a bounded
// per-tier queue until a heartbeat reports a free slot, their deadline
// passes, or the queue is full — each of which ends in a typed reply.
package dispatcher
