package schema

// Header names on the wire. NATS header keys are case-sensitive: use these
// exact spellings.
const (
	// HeaderContentType selects the codec of a job and of its replies.
	HeaderContentType = "Content-Type"
	// HeaderDeadline is the job's absolute deadline in Unix milliseconds.
	HeaderDeadline = "Llmq-Deadline"
	// HeaderTimeout is a relative time-out in milliseconds, for producers
	// that cannot send an absolute deadline; the dispatcher turns it into
	// HeaderDeadline when the job arrives.
	HeaderTimeout = "Llmq-Timeout"
	// HeaderStream marks the last message of a streamed reply: StreamEnd.
	HeaderStream = "Llmq-Stream"
	// HeaderStatus carries the status of error replies, in the header the
	// nats.go micro package uses, so micro-aware clients see errors too.
	HeaderStatus = "Nats-Service-Error-Code"
	// HeaderErrorMessage carries the error message of error replies.
	HeaderErrorMessage = "Nats-Service-Error"
	// HeaderErrorCode carries the llmq error code of error replies.
	HeaderErrorCode = "Llmq-Error-Code"

	// Headers the dispatcher adds when it forwards a job to a worker.
	HeaderTier       = "Llmq-Tier"
	HeaderDispatcher = "Llmq-Dispatcher"
	HeaderQueuedUs   = "Llmq-Queued-Us"
	HeaderAttempt    = "Llmq-Attempt"
)

// StreamEnd is the value of HeaderStream on the last message of a stream.
const StreamEnd = "end"

// HeaderControl, set to "true" by a producer on a non-streamed job, makes
// the job cancellable: the producer publishes (anything) to
// <prefix>.cancel.<the job's reply subject> (broker.Subjects.Cancel) and
// the worker running the job cancels the provider call and sends nothing
// more; a worker that gets the job after the cancel drops it unrun.
// Nothing is sent to the producer for a job it does not cancel.
const HeaderControl = "Llmq-Control"
