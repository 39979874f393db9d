package client_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

// TestClient_NamesAModelBySubjectElseByHeader: a model name that can be a
// subject is the subject; any other goes on <prefix>.jobs._ with
// Llmq-Model.
func TestClient_NamesAModelBySubjectElseByHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(client.Config{Timeout: wait})
	for _, tt := range []struct{ model, tier, header string }{
		{"openai/gpt-4o-mini", "openai/gpt-4o-mini", ""},
		{"gpt-4.1", "gpt-4.1", ""},
		{"odd..name", broker.AnyModel, "odd..name"},
		{"_", broker.AnyModel, "_"},
	} {
		jobs := e.respond(tt.tier, func(m *nats.Msg, _ *schema.Request) {
			_ = broker.ReplyError(e.worker, m.Reply, broker.CodecOf(m), schema.NewError(schema.CodeNoDeployments, "test"))
		})
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		_, _ = c.Complete(ctx, tt.model, &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "hi"}}})
		cancel()
		j := e.nextJob(jobs)
		if got := j.msg.Header.Get(schema.HeaderModel); j.msg.Subject != e.subjects.Jobs(tt.tier) || got != tt.header {
			t.Errorf("%s: sent on %s with Llmq-Model %q, want %s and %q", tt.model, j.msg.Subject, got, e.subjects.Jobs(tt.tier), tt.header)
		}
	}
	for _, bad := range []string{"", "a b", "openai/*", "a>b"} {
		_, err := c.Complete(context.Background(), bad, &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "hi"}}})
		if schema.CodeOf(err) != schema.CodeUnknownTier {
			t.Errorf("%q: %v, want unknown_tier", bad, err)
		}
	}
}
