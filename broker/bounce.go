package broker

import (
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// BounceMsg builds the message that returns a failed job to the
// dispatchers (on Subjects.Retry): the job's body, reply subject and
// headers, plus the failure's headers (those of an error reply, and
// Llmq-Failed-Deployment, Llmq-Retry-After-Ms, Llmq-Provider-Status).
// tier is set when the job does not name one yet.
func BounceMsg(subject string, job *nats.Msg, e *schema.Error, tier, deployment string) *nats.Msg {
	h := make(nats.Header, len(job.Header)+8)
	for k, v := range job.Header {
		h[k] = v
	}
	for k, v := range ErrorMsg("", CodecOf(job), e).Header {
		if k != schema.HeaderContentType {
			h[k] = v
		}
	}
	if h.Get(schema.HeaderTier) == "" {
		h[schema.HeaderTier] = []string{tier}
	}
	h[schema.HeaderFailedDeployment] = []string{deployment}
	if e.RetryAfterMs > 0 {
		h[schema.HeaderRetryAfterMs] = []string{strconv.FormatInt(e.RetryAfterMs, 10)}
	}
	if e.ProviderStatus > 0 {
		h[schema.HeaderProviderStatus] = []string{strconv.Itoa(e.ProviderStatus)}
	}
	return &nats.Msg{Subject: subject, Reply: job.Reply, Header: h, Data: job.Data}
}
