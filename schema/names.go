package schema

// Headers that name the model a job asks for (docs/protocol.md §2.1).
const (
	// HeaderModel names the model of a job published on <prefix>.jobs._
	// (broker.AnyModel), for names that cannot be a subject: a producer
	// header, read on that subject only.
	HeaderModel = "Llmq-Model"
	// HeaderRequestedModel is the model name a job routed to a wildcard
	// group asked for (after aliases), set by the dispatcher for the
	// worker, which passes it to its provider. Internal: a dispatcher
	// removes it from every job a producer sends.
	HeaderRequestedModel = "Llmq-Requested-Model"
)
