package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// ledger is a provider that answers at once with a set usage and records
// when each call reached it, to check what a provider would see against
// its rpm and tpm.
type ledger struct {
	usage schema.Usage
	mu    sync.Mutex
	calls []time.Time
}

func newLedger(prompt, completion int) *ledger {
	return &ledger{usage: schema.Usage{PromptTokens: prompt, CompletionTokens: completion}}
}

func (l *ledger) Complete(_ context.Context, req *schema.Request) (*schema.Response, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	l.mu.Unlock()
	return &schema.Response{
		Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: "echo: " + req.Messages[0].Content}, FinishReason: schema.FinishStop}},
		Usage:   l.usage,
	}, nil
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// busiest is the most calls the provider saw in any span of length span
// (each span starting at a call).
func (l *ledger) busiest(span time.Duration) int {
	l.mu.Lock()
	calls := append([]time.Time(nil), l.calls...)
	l.mu.Unlock()
	sort.Slice(calls, func(i, j int) bool { return calls[i].Before(calls[j]) })
	most := 0
	for i := range calls {
		n := 0
		for j := i; j < len(calls) && calls[j].Sub(calls[i]) < span; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

// admitSlack bounds the time between a worker admitting a call into its
// window and the call reaching the provider (microseconds; generous for
// -race on two shared cores). A provider sees at most rpm calls in any
// span of the window minus it.
const admitSlack = 150 * time.Millisecond

func limits(rpm, tpm int64, window time.Duration) func(*worker.Config) {
	return func(c *worker.Config) { c.RPM, c.TPM, c.RateWindow = rpm, tpm, window }
}

func priced(in, out float64) func(*worker.Config) {
	return func(c *worker.Config) { c.InputCostPerToken, c.OutputCostPerToken = in, out }
}

// TestUsageLimits_RPMHoldsFleetWide: two dispatchers share a burst of jobs
// for a tier of two deployments limited to rpm calls per window. Each
// provider sees at most rpm calls in any window (less the admission slack);
// the jobs over the limit wait in the dispatchers and all are answered.
func TestUsageLimits_RPMHoldsFleetWide(t *testing.T) {
	const rpm, window, jobs = 4, time.Second, 24
	e := setup(t)
	a, b := newLedger(1, 2), newLedger(1, 2)
	d1 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	d2 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	wa := e.worker("tier1", "a", 8, a, limits(rpm, 0, window))
	wb := e.worker("tier1", "b", 8, b, limits(rpm, 0, window))
	waitWorkers(t, d1, "tier1", 2)
	waitWorkers(t, d2, "tier1", 2)
	got := byDeployment(t, e.sendAll("tier1", jobs, "x"))
	t.Logf("jobs %v; refused by the workers and waited again: %d", got, wa.Heartbeat().Failed+wb.Heartbeat().Failed)
	if got["a"]+got["b"] != jobs || a.count()+b.count() != jobs {
		t.Fatalf("answers %v, provider calls %d + %d, want %d in all", got, a.count(), b.count(), jobs)
	}
	for name, l := range map[string]*ledger{"a": a, "b": b} {
		if n := l.busiest(window - admitSlack); n > rpm {
			t.Errorf("deployment %s: %d calls within %v, over its rpm of %d", name, n, window-admitSlack, rpm)
		}
	}
}

// TestUsageLimits_TPMHoldsFleetWide: as above for tokens. Each job is
// estimated at 1 + 9 tokens (prompt characters / 4, plus max_tokens) and
// uses 10, so at most tpm/10 calls fit in a window.
func TestUsageLimits_TPMHoldsFleetWide(t *testing.T) {
	const tpm, window, jobs = 30, time.Second, 12
	e := setup(t)
	l := newLedger(1, 9)
	d1 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	d2 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "a", 8, l, limits(0, tpm, window))
	waitWorkers(t, d1, "tier1", 1)
	waitWorkers(t, d2, "tier1", 1)
	nine := 9
	out := make([]result, jobs)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			req := ask("x")
			req.MaxTokens = &nine
			out[i].resp, out[i].err = e.client.Complete(ctx, "tier1", req)
		})
	}
	wg.Wait()
	if got := byDeployment(t, out); got["a"] != jobs {
		t.Fatalf("answers %v", got)
	}
	if n := l.busiest(window - admitSlack); n*10 > tpm {
		t.Errorf("%d calls of 10 tokens within %v, over the tpm of %d", n, window-admitSlack, tpm)
	}
}

// TestUsageLimits_SharedDeploymentWithinBound: one deployment served by two
// workers (two hosts, one id) and two dispatchers. Dispatchers sum the
// workers' usage against the limit; each worker enforces the whole limit
// on its own calls, so the documented hard bound is workers × rpm.
func TestUsageLimits_SharedDeploymentWithinBound(t *testing.T) {
	const rpm, window, jobs = 3, time.Second, 18
	e := setup(t)
	l := newLedger(1, 2)
	d1 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	d2 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "shared", 8, l, limits(rpm, 0, window))
	e.worker("tier1", "shared", 8, l, limits(rpm, 0, window))
	waitWorkers(t, d1, "tier1", 2)
	waitWorkers(t, d2, "tier1", 2)
	if got := byDeployment(t, e.sendAll("tier1", jobs, "x")); got["shared"] != jobs {
		t.Fatalf("answers %v", got)
	}
	n := l.busiest(window - admitSlack)
	t.Logf("busiest window: %d calls (rpm %d, 2 workers)", n, rpm)
	if n > 2*rpm {
		t.Errorf("%d calls within %v, over the bound of 2 × rpm %d", n, window-admitSlack, rpm)
	}
}

// sequential sends jobs one after another and returns the deployment that
// answered each.
func (e *env) sequential(t *testing.T, tier string, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		resp, err := e.client.Complete(ctx, tier, ask("x"))
		cancel()
		if err != nil {
			t.Fatalf("job %d: %v", len(out), err)
		}
		out = append(out, resp.Routing.Deployment)
	}
	return out
}

// TestUsageBased_PicksTheLeastUsed: usage-based routing sends each job to
// the deployment with the lowest share of its limit in use, so a
// deployment with 10 times the rpm gets 10 times the jobs.
func TestUsageBased_PicksTheLeastUsed(t *testing.T) {
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "usage-based-routing-v2"})
	// Slots to spare: a worker whose beats lag looks full to the
	// dispatcher, which then has one candidate and no choice to make.
	e.worker("tier1", "small", 64, newLedger(1, 2), limits(4, 0, time.Minute))
	e.worker("tier1", "large", 64, newLedger(1, 2), limits(40, 0, time.Minute))
	waitWorkers(t, d, "tier1", 2)
	count := map[string]int{}
	for _, dep := range e.sequential(t, "tier1", 22) {
		count[dep]++
	}
	if count["small"] < 1 || count["small"] > 3 || count["large"] != 22-count["small"] {
		t.Fatalf("jobs per deployment %v, want about 2 on small (rpm 4) and 20 on large (rpm 40)", count)
	}
}

// TestCostBased_CheapestUntilItsLimit: cost-based routing sends jobs to the
// cheapest deployment until it reaches its rpm, then to the next cheapest;
// an unpriced deployment comes after every priced one.
func TestCostBased_CheapestUntilItsLimit(t *testing.T) {
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "cost-based-routing"})
	e.worker("tier1", "cheap", 64, newLedger(1, 2), limits(3, 0, time.Minute), priced(1e-7, 2e-7))
	e.worker("tier1", "dear", 64, newLedger(1, 2), priced(3e-6, 15e-6))
	e.worker("tier1", "unpriced", 64, newLedger(1, 2))
	waitWorkers(t, d, "tier1", 3)
	got := e.sequential(t, "tier1", 6)
	want := []string{"cheap", "cheap", "cheap", "dear", "dear", "dear"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deployments %v, want %v", got, want)
	}
}

// TestCostBased_TiesAtRandom: equally priced deployments share the jobs.
func TestCostBased_TiesAtRandom(t *testing.T) {
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: config.CostBased})
	e.worker("tier1", "x", 64, newLedger(1, 2), priced(1e-6, 1e-6))
	e.worker("tier1", "y", 64, newLedger(1, 2), priced(1e-6, 1e-6))
	waitWorkers(t, d, "tier1", 2)
	count := map[string]int{}
	for _, dep := range e.sequential(t, "tier1", 24) {
		count[dep]++
	}
	if count["x"] == 0 || count["y"] == 0 {
		t.Fatalf("jobs per deployment %v: ties must be broken at random", count)
	}
}

// TestUsageLimits_JobWaitsForRoom: a job for a tier whose only deployment
// is at its rpm waits in the dispatcher while its deadline allows, then
// runs, its attempt count untouched.
func TestUsageLimits_JobWaitsForRoom(t *testing.T) {
	const window = 1500 * time.Millisecond
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	l := newLedger(1, 2)
	e.worker("tier1", "a", 4, l, limits(1, 0, window))
	waitWorkers(t, d, "tier1", 1)
	first := time.Now()
	e.sequential(t, "tier1", 1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := e.client.Complete(ctx, "tier1", ask("x"))
	if err != nil {
		t.Fatalf("second job: %v", err)
	}
	if took := time.Since(first); took < window/2 {
		t.Fatalf("second job answered %v after the first: it did not wait for the window", took)
	}
	if resp.Routing.Attempts != 1 || l.count() != 2 {
		t.Fatalf("attempts %d, provider calls %d; want 1 and 2", resp.Routing.Attempts, l.count())
	}
}

// TestUsageLimits_ShortDeadlineGetsRateLimited: a job whose deadline comes
// before any deployment has room is answered rate_limited at once, with
// the time until the window frees.
func TestUsageLimits_ShortDeadlineGetsRateLimited(t *testing.T) {
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "a", 4, newLedger(1, 2), limits(1, 0, time.Minute))
	waitWorkers(t, d, "tier1", 1)
	e.sequential(t, "tier1", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.client.Complete(ctx, "tier1", ask("x"))
	var se *schema.Error
	if !errors.As(err, &se) || se.Code != schema.CodeRateLimited {
		t.Fatalf("got %v, want rate_limited", err)
	}
	if ra := se.RetryAfter(); ra < 30*time.Second || ra > time.Minute {
		t.Fatalf("retry-after %v, want the time until the minute's window frees", ra)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("answered after %v: it should not wait for its deadline", took)
	}
}

// TestUsageLimits_RefusalIsNoAttempt: a job a worker refused at its usage
// limit (a bounce marked Llmq-Refused) is no failed attempt: the
// dispatcher sends that worker nothing until the refusal's retry-after,
// does not avoid its deployment after, and the job's attempt count stays
// as it was. No deployment rests.
func TestUsageLimits_RefusalIsNoAttempt(t *testing.T) {
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Policy: dispatcher.Policy{NumRetries: 0}})
	a := newLedger(1, 2)
	wa := e.worker("tier1", "a", 4, a, limits(100, 0, time.Minute))
	waitWorkers(t, d, "tier1", 1)
	// A bounce as worker a sends it after refusing the job: room again in
	// 600 ms.
	data, err := schema.JSON.Marshal(ask("refused"))
	if err != nil {
		t.Fatal(err)
	}
	inbox := nats.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	b := &nats.Msg{Subject: e.subjects.Retry(), Reply: inbox, Data: data, Header: nats.Header{
		schema.HeaderContentType:      {schema.ContentTypeJSON},
		schema.HeaderDeadline:         {strconv.FormatInt(time.Now().Add(wait).UnixMilli(), 10)},
		schema.HeaderTier:             {"tier1"},
		schema.HeaderErrorCode:        {schema.CodeRateLimited},
		schema.HeaderErrorMessage:     {"at its limit"},
		schema.HeaderStatus:           {"429"},
		schema.HeaderFailedDeployment: {"a"},
		schema.HeaderRetryAfterMs:     {"600"},
		schema.HeaderRefused:          {wa.ID()},
	}}
	start := time.Now()
	if err := e.nc.PublishMsg(b); err != nil {
		t.Fatal(err)
	}
	m, err := replies.NextMsg(wait)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := schema.DecodeReply(schema.JSON, m.Data, m.Header.Get(schema.HeaderErrorCode) != "")
	if err != nil {
		t.Fatalf("the refused job failed: %v (with num_retries 0 a counted attempt would have been its last)", err)
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("the job went back to the refusing worker after %v, before its retry-after", took)
	}
	if resp.Routing.Deployment != "a" || resp.Routing.Attempts != 1 || a.count() != 1 {
		t.Fatalf("routing %+v, provider calls %d", resp.Routing, a.count())
	}
	if until, _ := wa.Cooling(); !until.IsZero() {
		t.Fatal("the deployment cooled")
	}
}
