package dispatcher_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

func tagged(tags ...string) func(*worker.Config) {
	return func(c *worker.Config) { c.Tags = tags }
}

func askTagged(text string, tags ...string) *schema.Request {
	r := ask(text)
	r.Tags = tags
	return r
}

// sendTagged sends n jobs with tags and counts the deployments that
// answered.
func (e *env) sendTagged(tier string, n int, tags ...string) map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for range n {
		resp, err := e.client.Complete(context.Background(), tier, askTagged("x", tags...))
		if err != nil {
			e.t.Fatalf("tags %q: %v", tags, err)
		}
		out[resp.Routing.Deployment]++
	}
	return out
}

// Tag routing as LiteLLM's: a tagged job goes to the deployments with its
// tag, an untagged one to those tagged default, a job whose tags match
// nothing to the default ones too.
func TestTags_MatchAndDefault(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, TagFiltering: true})
	e.worker("tier1", "free", 4, echo(), tagged("free"))
	e.worker("tier1", "paid", 4, echo(), tagged("paid", "team-a"))
	e.worker("tier1", "dflt", 4, echo(), tagged("default"))
	waitWorkers(t, d, "tier1", 3)
	if got := e.sendTagged("tier1", 20, "paid"); got["paid"] != 20 {
		t.Errorf("tags [paid] went to %v", got)
	}
	if got := e.sendTagged("tier1", 20, "nope", "team-a"); got["paid"] != 20 {
		t.Errorf("tags [nope team-a] (match any) went to %v", got)
	}
	if got := e.sendTagged("tier1", 20); got["dflt"] != 20 {
		t.Errorf("untagged jobs went to %v, want the default deployment", got)
	}
	if got := e.sendTagged("tier1", 20, "nope"); got["dflt"] != 20 {
		t.Errorf("tags [nope] went to %v, want the default deployment", got)
	}
}

// No default deployment: a tagged job nothing matches is refused with
// LiteLLM's reason, untagged jobs go anywhere, and without
// enable_tag_filtering tags are ignored.
func TestTags_NoMatchWithoutDefault_IsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, TagFiltering: true, TagMatchAll: true})
	e.worker("tier1", "free", 4, echo(), tagged("free"))
	e.worker("tier1", "both", 4, echo(), tagged("paid", "team-a"))
	waitWorkers(t, d, "tier1", 2)
	_, err := e.client.Complete(context.Background(), "tier1", askTagged("x", "paid", "team-b"))
	var se *schema.Error
	if !asError(err, &se) || se.Code != schema.CodeNoDeployments || !strings.Contains(se.Message, "tags configuration") ||
		!strings.Contains(se.Message, "paid, team-b") {
		t.Fatalf("err = %v, want no_deployments naming the tags", err)
	}
	if got := e.sendTagged("tier1", 10, "team-a", "paid"); got["both"] != 10 {
		t.Errorf("tags [team-a paid] (match all) went to %v", got)
	}
	if got := e.sendTagged("tier1", 40); got["free"] == 0 || got["both"] == 0 {
		t.Errorf("untagged jobs went to %v, want both deployments", got)
	}

	off := setup(t)
	d2 := off.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	off.worker("tier1", "free", 4, echo(), tagged("free"))
	waitWorkers(t, d2, "tier1", 1)
	if got := off.sendTagged("tier1", 5, "paid"); got["free"] != 5 {
		t.Errorf("without enable_tag_filtering: %v", got)
	}
}

// Tags in the body (metadata.tags, top-level tags; JSON and msgpack) route
// as the header does, and a retry keeps them.
func TestTags_FromTheBody_AndKeptOnRetry(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, TagFiltering: true, Policy: dispatcher.Policy{NumRetries: 2, BackoffInitial: time.Millisecond}})
	flaky := &failing{n: 1, err: errOf(schema.CodeProviderError)}
	e.worker("tier1", "paid-a", 1, flaky, tagged("paid"))
	e.worker("tier1", "paid-b", 1, echo(), tagged("paid"))
	e.worker("tier1", "free", 4, echo(), tagged("free", "default"))
	waitWorkers(t, d, "tier1", 3)
	msgpackBody, err := schema.MsgPack.Marshal(map[string]any{
		"messages": []any{map[string]any{"role": "user", "content": "x"}}, "tags": []any{"paid"}})
	if err != nil {
		t.Fatal(err)
	}
	bodies := []struct {
		ct   string
		data []byte
	}{
		{schema.ContentTypeJSON, []byte(`{"messages":[{"role":"user","content":"x"}],"metadata":{"tags":["paid"],"user":"u1"}}`)},
		{schema.ContentTypeJSON, []byte(`{"messages":[{"role":"user","content":"x"}],"tags":"paid"}`)},
		{schema.ContentTypeMsgPack, msgpackBody},
	}
	for i := range 12 {
		b := bodies[i%len(bodies)]
		m := &nats.Msg{Subject: e.subjects.Jobs("tier1"), Header: nats.Header{schema.HeaderContentType: {b.ct}}, Data: b.data}
		reply, err := e.nc.RequestMsg(m, wait)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := schema.DecodeReply(broker.CodecOf(reply), reply.Data, broker.IsError(reply))
		if err != nil {
			t.Fatalf("body %d: %v", i%len(bodies), err)
		}
		if dep := resp.Routing.Deployment; dep != "paid-a" && dep != "paid-b" {
			t.Fatalf("body %d went to %s (attempts %d)", i%len(bodies), dep, resp.Routing.Attempts)
		}
	}
	if flaky.calls.Load() < 1 || d.Stats().Retries < 1 {
		t.Fatalf("paid-a called %d times, %d retries: the test did not retry", flaky.calls.Load(), d.Stats().Retries)
	}
}

// counting answers at once, counting its calls.
type counting struct {
	calls atomic.Int64
}

func (c *counting) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	c.calls.Add(1)
	return echo()(ctx, req)
}

var _ provider.Provider = (*counting)(nil)

func window(n int) func(*worker.Config) { return func(c *worker.Config) { c.MaxInputTokens = n } }

// Pre-call checks: a prompt too long for a deployment's window goes to a
// deployment of the tier whose window fits, without a retry and without
// calling the small one; the dispatcher remembers the estimate.
func TestPreCall_SkipsTheDeploymentTooSmall(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Seed: 7})
	small, big := &counting{}, &counting{}
	e.worker("tier1", "small", 4, small, window(100))
	e.worker("tier1", "big", 4, big, window(100000))
	waitWorkers(t, d, "tier1", 2)
	long := strings.Repeat("lorem ipsum ", 200) // about 600 tokens
	moved := 0
	for range 20 {
		resp, err := e.client.Complete(context.Background(), "tier1", ask(long))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Routing.Deployment != "big" {
			t.Fatalf("long prompt answered by %s", resp.Routing.Deployment)
		}
		if resp.Routing.Attempts > 1 {
			moved++
		}
	}
	if small.calls.Load() != 0 || moved == 0 || d.Stats().Retries != 0 {
		t.Fatalf("small called %d times; %d jobs moved; %d retries (want 0, >0, 0)", small.calls.Load(), moved, d.Stats().Retries)
	}
	// Short prompts still use both.
	counts := byDeployment(t, e.sendAll("tier1", 40, "short"))
	if counts["small"] == 0 || counts["big"] == 0 {
		t.Fatalf("short prompts went to %v", counts)
	}
}

// When no deployment of the tier fits: context_window_fallbacks, else
// context_window_exceeded saying so.
func TestPreCall_NoneFits_ContextWindowFallbackOrError(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"short", "long", "alone"}, Policy: dispatcher.Policy{
		NumRetries: 2, ContextWindowFallbacks: map[string][]string{"short": {"long"}},
	}})
	a, b, c := &counting{}, &counting{}, &counting{}
	e.worker("short", "short-a", 2, a, window(50))
	e.worker("short", "short-b", 2, b, window(80))
	e.worker("long", "long", 2, c, window(1_000_000))
	e.worker("alone", "alone", 2, echo(), window(50))
	waitWorkers(t, d, "short", 2)
	waitWorkers(t, d, "long", 1)
	waitWorkers(t, d, "alone", 1)
	long := strings.Repeat("lorem ipsum ", 100)
	resp, err := e.client.Complete(context.Background(), "short", ask(long))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Routing.Tier != "long" || a.calls.Load()+b.calls.Load() != 0 {
		t.Fatalf("answered by tier %s; short deployments called %d times", resp.Routing.Tier, a.calls.Load()+b.calls.Load())
	}
	_, err = e.client.Complete(context.Background(), "alone", ask(long))
	var se *schema.Error
	if !asError(err, &se) || se.Code != schema.CodeContextWindowExceeded || !strings.Contains(se.Message, `no deployment of tier "alone" has a context window`) {
		t.Fatalf("err = %v, want context_window_exceeded for the tier", err)
	}
}

// A deployment's own num_retries replaces the router's for the jobs it
// fails.
func TestDeploymentNumRetries(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "tier2"}, Policy: dispatcher.Policy{
		NumRetries: 0, BackoffInitial: time.Millisecond, DeploymentRetries: map[string]int{"patient": 2},
	}})
	patient := &failing{n: 2, err: errOf(schema.CodeProviderError)}
	strict := &failing{n: 1, err: errOf(schema.CodeProviderError)}
	e.worker("tier1", "patient", 1, patient)
	e.worker("tier2", "strict", 1, strict)
	waitWorkers(t, d, "tier1", 1)
	waitWorkers(t, d, "tier2", 1)
	resp, err := e.client.Complete(context.Background(), "tier1", ask("x"))
	if err != nil || resp.Routing.Attempts != 3 {
		t.Fatalf("patient: %v after %v attempts, want success after 3", err, resp)
	}
	if _, err := e.client.Complete(context.Background(), "tier2", ask("x")); schema.CodeOf(err) != schema.CodeProviderError || strict.calls.Load() != 1 {
		t.Fatalf("strict (router num_retries 0): %v after %d calls", err, strict.calls.Load())
	}
}
