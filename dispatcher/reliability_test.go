package dispatcher_test

import (
	"context"
	"sync"
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

// failing is a provider that fails its first n calls (all, when n < 0)
// with err, then echoes. It records when each call started.
type failing struct {
	n     int64
	err   func() *schema.Error
	calls atomic.Int64
	mu    sync.Mutex
	at    []time.Time
}

func (f *failing) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	c := f.calls.Add(1)
	f.mu.Lock()
	f.at = append(f.at, time.Now())
	f.mu.Unlock()
	if f.n < 0 || c <= f.n {
		return nil, f.err()
	}
	return echo()(ctx, req)
}

func rateLimited(after time.Duration) func() *schema.Error {
	return func() *schema.Error {
		return schema.NewError(schema.CodeRateLimited, "test: HTTP 429").WithRetryAfter(after)
	}
}

func errOf(code string) func() *schema.Error {
	return func() *schema.Error { return schema.NewError(code, "test: "+code) }
}

func TestDispatcher_Retry_GoesToAnotherDeployment(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Policy: dispatcher.Policy{NumRetries: 2, BackoffInitial: time.Millisecond}})
	bad := &failing{n: -1, err: errOf(schema.CodeProviderError)}
	noCool := func(c *worker.Config) { c.Cooldown.Disabled = true }
	e.worker("tier1", "bad", 4, bad, noCool)
	e.worker("tier1", "good", 4, echo(), noCool)
	waitWorkers(t, d, "tier1", 2)
	rs := e.sendAll("tier1", 40, "x")
	retried := 0
	for _, r := range rs {
		if r.err != nil {
			t.Fatalf("job failed despite a healthy deployment: %v", r.err)
		}
		if r.resp.Routing.Deployment != "good" {
			t.Fatalf("answered by %s", r.resp.Routing.Deployment)
		}
		if r.resp.Routing.Attempts == 2 {
			retried++
		}
	}
	if int64(retried) != bad.calls.Load() || retried == 0 {
		t.Fatalf("%d replies say 2 attempts, bad deployment was called %d times", retried, bad.calls.Load())
	}
	if got := d.Stats().Retries; got != uint64(retried) {
		t.Fatalf("retries counter %d, want %d", got, retried)
	}
}

func TestDispatcher_Retry_HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Policy: dispatcher.Policy{NumRetries: 1, BackoffInitial: time.Millisecond}})
	p := &failing{n: 1, err: rateLimited(300 * time.Millisecond)}
	e.worker("tier1", "only", 1, p)
	waitWorkers(t, d, "tier1", 1)
	resp, err := e.client.Complete(context.Background(), "tier1", ask("x"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Routing.Attempts != 2 {
		t.Fatalf("attempts %d", resp.Routing.Attempts)
	}
	p.mu.Lock()
	gap := p.at[1].Sub(p.at[0])
	p.mu.Unlock()
	if gap < 300*time.Millisecond {
		t.Fatalf("retried after %s, before the provider's Retry-After of 300ms", gap)
	}
}

func TestDispatcher_AuthenticationAndBadRequest_NotRetried(t *testing.T) {
	t.Parallel()
	for _, code := range []string{schema.CodeAuthentication, schema.CodeBadRequest} {
		e := setup(t)
		d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Policy: dispatcher.Policy{NumRetries: 3, BackoffInitial: time.Millisecond}})
		p := &failing{n: -1, err: errOf(code)}
		e.worker("tier1", "a", 2, p)
		waitWorkers(t, d, "tier1", 1)
		_, err := e.client.Complete(context.Background(), "tier1", ask("x"))
		if schema.CodeOf(err) != code {
			t.Fatalf("err = %v, want %s", err, code)
		}
		if n := p.calls.Load(); n != 1 {
			t.Fatalf("%s: provider called %d times, want 1", code, n)
		}
	}
}

func TestDispatcher_RetriesSpent_FallsBackToNextTier(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "tier2"}, Policy: dispatcher.Policy{
		NumRetries: 1, BackoffInitial: time.Millisecond, Fallbacks: map[string][]string{"tier1": {"tier2"}},
	}})
	p := &failing{n: -1, err: errOf(schema.CodeProviderError)}
	e.worker("tier1", "t1", 2, p, func(c *worker.Config) { c.Cooldown.Disabled = true })
	e.worker("tier2", "t2", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	waitWorkers(t, d, "tier2", 1)
	resp, err := e.client.Complete(context.Background(), "tier1", ask("x"))
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Routing; r.Tier != "tier2" || r.Deployment != "t2" || r.Attempts != 3 {
		t.Fatalf("routing %+v, want tier2 after 3 attempts (1 + 1 retry + fallback)", r)
	}
	if s := d.Stats(); s.Fallbacks != 1 || s.Retries != 1 {
		t.Fatalf("stats fallbacks %d retries %d", s.Fallbacks, s.Retries)
	}

	// A producer may opt out of fallbacks.
	msg := &nats.Msg{Subject: e.subjects.Jobs("tier1"), Header: nats.Header{
		schema.HeaderContentType: {schema.ContentTypeJSON}, schema.HeaderDisableFallbacks: {"true"},
	}, Data: []byte(`{"messages":[{"role":"user","content":"x"}]}`)}
	reply, err := e.nc.RequestMsg(msg, wait)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(schema.HeaderErrorCode); code != schema.CodeProviderError {
		t.Fatalf("with fallbacks disabled: code %q, want provider_error", code)
	}
}

func TestDispatcher_ContextWindowExceeded_UsesContextWindowFallbacks(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"small", "big", "other"}, Policy: dispatcher.Policy{
		NumRetries:             2,
		Fallbacks:              map[string][]string{"small": {"other"}},
		ContextWindowFallbacks: map[string][]string{"small": {"big"}},
	}})
	p := &failing{n: -1, err: errOf(schema.CodeContextWindowExceeded)}
	e.worker("small", "s", 2, p)
	e.worker("big", "b", 2, echo())
	e.worker("other", "o", 2, echo())
	for _, tier := range []string{"small", "big", "other"} {
		waitWorkers(t, d, tier, 1)
	}
	resp, err := e.client.Complete(context.Background(), "small", ask("a very long prompt"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Routing.Tier != "big" || p.calls.Load() != 1 {
		t.Fatalf("answered by %s after %d calls to small; want big after 1 (no retry of a context overflow)", resp.Routing.Tier, p.calls.Load())
	}
}

func TestDispatcher_RetriesStopAtDeadline(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Policy: dispatcher.Policy{NumRetries: 5}})
	p := &failing{n: -1, err: rateLimited(time.Minute)}
	e.worker("tier1", "a", 2, p)
	waitWorkers(t, d, "tier1", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := e.client.Complete(ctx, "tier1", ask("x"))
	if schema.CodeOf(err) != schema.CodeRateLimited {
		t.Fatalf("err = %v, want the rate limit itself (a retry after a minute cannot meet a 3s deadline)", err)
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("provider called %d times", n)
	}
}

func TestDispatcher_Cooldown_FailingDeploymentRestsAndJobsGoElsewhere(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Policy: dispatcher.Policy{NumRetries: 2, BackoffInitial: time.Millisecond}})
	bad := &failing{n: -1, err: errOf(schema.CodeProviderError)}
	cool := func(c *worker.Config) { c.Cooldown = worker.Cooldown{AllowedFails: 2, Time: time.Hour} }
	e.worker("tier1", "bad", 4, bad, cool)
	e.worker("tier1", "good", 4, echo(), cool)
	waitWorkers(t, d, "tier1", 2)
	// Send until the bad deployment has failed twice: it then rests.
	for bad.calls.Load() < 2 {
		if _, err := e.client.Complete(context.Background(), "tier1", ask("x")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(wait)
	for !coolingIn(d, "bad") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
	if !coolingIn(d, "bad") {
		t.Fatal("bad deployment never reported cooling")
	}
	before := bad.calls.Load()
	counts := byDeployment(t, e.sendAll("tier1", 50, "x"))
	if counts["good"] != 50 || bad.calls.Load() != before {
		t.Fatalf("while bad cools jobs went %v and bad was called %d more times", counts, bad.calls.Load()-before)
	}
}

func coolingIn(d *dispatcher.Dispatcher, deployment string) bool {
	for _, ts := range d.Stats().Tiers {
		for _, w := range ts.Workers {
			if w.Deployment == deployment && w.CoolingUntilMs > time.Now().UnixMilli() {
				return true
			}
		}
	}
	return false
}

func TestDispatcher_AllDeploymentsCooling_RepliesCoolingDownWithRetryAfter(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	cool := func(c *worker.Config) { c.Cooldown = worker.Cooldown{AllowedFails: 1, Time: time.Hour} }
	a := &failing{n: -1, err: errOf(schema.CodeProviderError)}
	b := &failing{n: -1, err: errOf(schema.CodeProviderError)}
	e.worker("tier1", "a", 2, a, cool)
	e.worker("tier1", "b", 2, b, cool)
	waitWorkers(t, d, "tier1", 2)
	deadline := time.Now().Add(wait)
	for !(coolingIn(d, "a") && coolingIn(d, "b")) && time.Now().Before(deadline) {
		_, _ = e.client.Complete(context.Background(), "tier1", ask("x"))
	}
	_, err := e.client.Complete(context.Background(), "tier1", ask("x"))
	var se *schema.Error
	// The worker rests an hour; a dispatcher believes a beat's cooling only
	// up to broker.MaxCooling ahead (the worker repeats it in every beat).
	if !asError(err, &se) || se.Code != schema.CodeCoolingDown || se.RetryAfter() < broker.MaxCooling/2 {
		t.Fatalf("err = %v, want cooling_down with a retry-after of minutes", err)
	}
}

func TestDispatcher_SingleDeploymentTier_NotCooledOnRateLimit(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	p := &failing{n: 1, err: rateLimited(0)}
	e.worker("tier1", "only", 2, p, func(c *worker.Config) { c.Cooldown = worker.Cooldown{Time: time.Hour} })
	waitWorkers(t, d, "tier1", 1)
	if _, err := e.client.Complete(context.Background(), "tier1", ask("x")); schema.CodeOf(err) != schema.CodeRateLimited {
		t.Fatalf("first call: %v", err)
	}
	deadline := time.Now().Add(wait)
	for !coolingIn(d, "only") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
	// The deployment reports its rest, yet as the tier's only one it still
	// takes jobs.
	if _, err := e.client.Complete(context.Background(), "tier1", ask("x")); err != nil {
		t.Fatalf("second call: %v", err)
	}
}

func TestDispatcher_LostWorker_JobRedispatchedAndAnsweredOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, SweepInterval: 10 * time.Millisecond})
	g := newGate()
	doomedConn := e.srv.Connect("doomed")
	e.worker("tier1", "doomed", 1, g, func(c *worker.Config) { c.Conn = doomedConn })
	waitWorkers(t, d, "tier1", 1)
	// The producer's inbox: count every answer it gets.
	inbox := e.nc.NewInbox()
	answers := make(chan *nats.Msg, 4)
	sub, err := e.nc.ChanSubscribe(inbox, answers)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	job := &nats.Msg{Subject: e.subjects.Jobs("tier1"), Reply: inbox, Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}},
		Data: []byte(`{"messages":[{"role":"user","content":"survive"}]}`)}
	if err := e.nc.PublishMsg(job); err != nil {
		t.Fatal(err)
	}
	g.awaitStarted(t, 1)
	// The worker's process dies: its connection drops with no goodbye.
	doomedConn.Close()
	e.worker("tier1", "rescuer", 1, echo())
	var got *nats.Msg
	select {
	case got = <-answers:
	case <-time.After(wait):
		t.Fatal("job of the lost worker never answered")
	}
	if got.Header.Get(schema.HeaderStatus) != "" {
		t.Fatalf("answer is an error: %s", got.Data)
	}
	if d.Stats().Redispatched != 1 {
		t.Fatalf("redispatched %d", d.Stats().Redispatched)
	}
	close(g.release) // the dead worker's call ends; its reply cannot leave
	select {
	case extra := <-answers:
		t.Fatalf("second answer: %s", extra.Data)
	case <-time.After(200 * time.Millisecond): // a bound on absence, not a synchronisation
	}
}

var _ provider.Provider = (*failing)(nil)

// A job forwarded while its worker's connection was down (a NATS node
// failing over, say) never reaches the worker: its beats keep saying it
// did not receive it. The dispatcher sends it again elsewhere instead of
// counting it in flight on the worker for ever, which made the worker look
// full to it until restart (TestBatch_ClusterNodeLoss stalled on this).
func TestDispatcher_JobLostInTransit_SentAgainAndWorkerFreed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, SweepInterval: 10 * time.Millisecond})
	// The ghost is a worker peer on a raw connection: it beats, and drops
	// the first job it is sent as a network that lost it would.
	jobs := make(chan *nats.Msg, 8)
	sub, err := e.nc.ChanSubscribe(e.subjects.Worker("ghost"), jobs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	var state atomic.Value
	state.Store(schema.StateReady)
	stop := make(chan struct{})
	var beats sync.WaitGroup
	defer func() { close(stop); beats.Wait() }()
	beats.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			e.beat("ghost", schema.Heartbeat{Worker: "ghost", Tier: "tier1", Deployment: "ghost", Subject: e.subjects.Worker("ghost"),
				State: state.Load().(string), Seq: seq, IntervalMs: 50, Capacity: 1})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	waitWorkers(t, d, "tier1", 1)
	answers := make(chan result, 1)
	go func() {
		r, err := e.client.Complete(context.Background(), "tier1", ask("lost once"))
		answers <- result{r, err}
	}()
	select {
	case <-jobs: // lost: the ghost never says it received it
	case <-time.After(wait):
		t.Fatal("job never forwarded to the ghost")
	}
	state.Store(schema.StateDraining) // the job can only go elsewhere now
	rescuer := e.worker("tier1", "rescuer", 1, echo())
	select {
	case r := <-answers:
		if r.err != nil {
			t.Fatalf("job lost in transit: %v", r.err)
		}
		if r.resp.Routing.Deployment != "rescuer" {
			t.Fatalf("answered by %q", r.resp.Routing.Deployment)
		}
	case <-time.After(wait):
		t.Fatal("job lost in transit never answered")
	}
	if n := d.Stats().Redispatched; n != 1 {
		t.Fatalf("redispatched %d, want 1", n)
	}
	// The ghost is ready again and the only worker: the dispatcher sends
	// it the next job, the lost one no longer counted against its slot.
	state.Store(schema.StateReady)
	if err := rescuer.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for len(workersOf(d, "tier1")) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a snapshot
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var second sync.WaitGroup
	defer second.Wait()
	defer cancel()
	second.Go(func() { _, _ = e.client.Complete(ctx, "tier1", ask("next")) })
	select {
	case <-jobs:
	case <-time.After(wait):
		t.Fatal("the ghost's slot stayed taken by the job lost on the way to it")
	}
}
