package dispatcher

import (
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// producerHeader reports whether a producer may set header k (see
// docs/protocol.md §5, "Set by the producer"): Content-Type and the few
// Llmq-* headers that describe the job. Every other Llmq-* header, and the
// error headers of replies (Nats-Service-Error, Nats-Service-Error-Code),
// is written only by llmq's components: a producer that sends one could
// forge a job's history (attempts, fallbacks taken, origin tier, excluded
// deployments), its dispatcher or job number, or make its job look like a
// failed attempt. Headers outside those prefixes travel untouched.
//
// The prefixes are compared without regard to case: NATS header keys are
// case-sensitive, but a component that canonicalised keys must not see an
// internal header appear.
func producerHeader(k string) bool {
	switch {
	case len(k) >= 5 && strings.EqualFold(k[:5], "llmq-"):
		switch k {
		case schema.HeaderDeadline, schema.HeaderTimeout, schema.HeaderPriority,
			schema.HeaderDisableFallbacks, schema.HeaderStreaming, schema.HeaderControl, schema.HeaderTags,
			schema.HeaderModel, schema.HeaderSession:
			return true
		}
		return false
	case len(k) >= 18 && strings.EqualFold(k[:18], "nats-service-error"):
		return false
	}
	return true
}

// stripInternal removes the headers a producer may not set (see
// producerHeader) and returns how many it removed. It allocates nothing:
// a job with none costs one pass over its few header keys.
func stripInternal(h nats.Header) int {
	n := 0
	for k := range h {
		if !producerHeader(k) {
			delete(h, k)
			n++
		}
	}
	return n
}
