package schema

// Headers of a job bounced from a worker back to the dispatchers for
// another attempt (see docs/protocol.md, "Retries and fallbacks"). The job's
// own headers, body and reply subject travel unchanged beside them.
const (
	// HeaderJobSeq numbers the jobs one dispatcher sends one worker, from 1;
	// workers report the numbers they hold in heartbeats, so a dispatcher
	// knows which jobs a lost worker took with it.
	HeaderJobSeq = "Llmq-Job-Seq"
	// HeaderQueueWaitUs is how long, in microseconds, the oldest job still
	// waiting in the forwarding dispatcher's queue of the job's tier had
	// waited when the dispatcher forwarded the job (omitted when none
	// waited). Workers report it per dispatcher in beats
	// (Heartbeat.QueueAgeUs), so that dispatchers sharing a worker's free
	// slots give them to the oldest jobs first.
	HeaderQueueWaitUs = "Llmq-Queue-Wait-Us"
	// HeaderOriginTier is the tier the producer asked for, when a fallback
	// moved the job to another.
	HeaderOriginTier = "Llmq-Origin-Tier"
	// HeaderTierAttempts counts the attempts made in the current tier.
	HeaderTierAttempts = "Llmq-Tier-Attempts"
	// HeaderFallbacks counts the fallbacks taken.
	HeaderFallbacks = "Llmq-Fallbacks"
	// HeaderExclude lists, comma-separated, the deployments that failed
	// this job in the current tier; a retry goes elsewhere when it can.
	HeaderExclude = "Llmq-Exclude"
	// HeaderFailedDeployment is the deployment whose failure bounced the
	// job.
	HeaderFailedDeployment = "Llmq-Failed-Deployment"
	// HeaderRetryAfterMs is the failure's retry-after hint.
	HeaderRetryAfterMs = "Llmq-Retry-After-Ms"
	// HeaderProviderStatus is the upstream HTTP status of the failure.
	HeaderProviderStatus = "Llmq-Provider-Status"
	// HeaderDisableFallbacks, set to "true" by a producer, opts the job out
	// of fallbacks (LiteLLM's per-request disable_fallbacks).
	HeaderDisableFallbacks = "Llmq-Disable-Fallbacks"
	// HeaderRefused, on a bounced job, is the id of the worker that
	// refused it without calling its provider, because its deployment was
	// at its usage limit (rpm or tpm, see docs/protocol.md "Usage limits").
	// No attempt was made and the deployment did not fail: a dispatcher
	// queues the job again without counting an attempt and without
	// avoiding the deployment, and sends that worker nothing more until
	// the refusal's retry-after.
	HeaderRefused = "Llmq-Refused"
	// HeaderStreaming, set to "true" by a producer, marks a streamed job, so
	// that a dispatcher whose worker was lost mid-job answers with an error
	// instead of starting the stream again.
	HeaderStreaming = "Llmq-Streaming"
)

// CodeCoolingDown means every deployment of the tier is resting after
// failures (429, retryable; see RetryAfterMs).
const CodeCoolingDown = "cooling_down"

func init() {
	// codeInfo is a read-only table; this adds the codes defined here.
	codeInfo[CodeCoolingDown] = struct {
		typ    string
		status int
	}{TypeRateLimit, 429}
}

// HeaderPriority, set to PriorityBatch, marks a batch job: dispatchers run
// it only on capacity that interactive (request-reply) jobs leave free.
const HeaderPriority = "Llmq-Priority"

// PriorityBatch is the value of HeaderPriority for batch jobs.
const PriorityBatch = "batch"
