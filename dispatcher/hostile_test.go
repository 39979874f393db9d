package dispatcher_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// Regression tests for issue 10: every message a dispatcher receives may
// come from any client of the NATS server. Each test sends what an
// attacker with a producer's access sent, and checks that the dispatcher
// answers it with a typed error (or drops it) and still serves.

var jobBody = []byte(`{"messages":[{"role":"user","content":"x"}]}`)

// rawJob sends a JSON job for tier with extra headers and returns the
// reply.
func (e *env) rawJob(tier string, h nats.Header, timeout time.Duration) (*nats.Msg, error) {
	if h == nil {
		h = nats.Header{}
	}
	h[schema.HeaderContentType] = []string{schema.ContentTypeJSON}
	return e.nc.RequestMsg(&nats.Msg{Subject: e.subjects.Jobs(tier), Header: h, Data: jobBody}, timeout)
}

// stillServes checks that the dispatcher answers an ordinary job.
func (e *env) stillServes(tier string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := e.client.Complete(ctx, tier, ask("still here")); err != nil {
		e.t.Fatalf("an ordinary job afterwards: %v", err)
	}
}

// beat publishes hb as the attacker (the producer's connection) on the
// heartbeat subject of worker id.
func (e *env) beat(id string, hb schema.Heartbeat) {
	e.t.Helper()
	data, err := msgpack.Marshal(&hb)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.Publish(e.subjects.Heartbeat(id), data); err != nil {
		e.t.Fatal(err)
	}
}

// probe publishes a well-formed beat of a draining worker in tier "probe"
// (configured, so that no limit on learned tiers refuses it) after
// everything published before and waits until the dispatcher knows it:
// the beats sent before it have been handled by then.
func (e *env) probe(d *dispatcher.Dispatcher) {
	e.t.Helper()
	id := "probe-" + nuid.Next()[14:]
	e.beat(id, schema.Heartbeat{Worker: id, Tier: "probe", Subject: e.subjects.Worker(id), State: schema.StateDraining,
		Seq: 1, IntervalMs: 60_000, Capacity: 1})
	awaitStats(e.t, d, "the probe beat", func(s dispatcher.Stats) bool {
		for _, ts := range s.Tiers {
			for _, w := range ts.Workers {
				if w.Worker == id {
					return true
				}
			}
		}
		return false
	})
}

// awaitStats polls the dispatcher's stats until ok holds.
func awaitStats(t *testing.T, d *dispatcher.Dispatcher, what string, ok func(dispatcher.Stats) bool) dispatcher.Stats {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		s := d.Stats()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%+v", s)
			t.Fatalf("never saw %s; stats %.2000s", what, msg)
		}
		time.Sleep(10 * time.Millisecond) // polling a snapshot
	}
}

func TestDispatcher_ProducerInternalHeaders_CannotPanicDispatcher(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "tier2"}, Policy: dispatcher.Policy{
		BackoffInitial: time.Millisecond, Fallbacks: map[string][]string{"tier1": {"tier2"}},
	}})
	e.worker("tier1", "bad", 2, &failing{n: -1, err: errOf(schema.CodeProviderError)}, func(c *worker.Config) { c.Cooldown.Disabled = true })
	e.worker("tier2", "good", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	waitWorkers(t, d, "tier2", 1)
	reply, err := e.rawJob("tier1", nats.Header{
		schema.HeaderFallbacks: {"-1"}, schema.HeaderTierAttempts: {"5"}, schema.HeaderOriginTier: {"tier1"},
		schema.HeaderAttempt: {"3"}, schema.HeaderExclude: {"good"}, schema.HeaderDispatcher: {"d-forged"},
	}, wait)
	if err != nil {
		t.Fatal(err)
	}
	if broker.IsError(reply) {
		t.Fatalf("job with forged internal headers: error %s %s", reply.Header.Get(schema.HeaderErrorCode), reply.Header.Get(schema.HeaderErrorMessage))
	}
	resp, err := schema.DecodeReply(schema.JSON, reply.Data, false)
	if err != nil {
		t.Fatal(err)
	}
	// The forged history is ignored: one attempt in tier1, one fallback.
	if r := resp.Routing; r.Tier != "tier2" || r.Attempts != 2 {
		t.Fatalf("routing %+v, want tier2 after 2 attempts", r)
	}
	e.stillServes("tier2")
	if n := d.Stats().Dropped.InternalHeaders; n != 1 {
		t.Fatalf("internal headers counted on %d jobs, want 1", n)
	}
}

func TestDispatcher_ProducerTierAttemptsHeader_CannotBuyRetries(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Policy: dispatcher.Policy{
		NumRetries: 1, BackoffInitial: time.Millisecond, BackoffMax: time.Millisecond,
	}})
	p := &failing{n: -1, err: errOf(schema.CodeProviderError)}
	e.worker("tier1", "bad", 2, p, func(c *worker.Config) { c.Cooldown.Disabled = true })
	waitWorkers(t, d, "tier1", 1)
	reply, err := e.rawJob("tier1", nats.Header{
		schema.HeaderTierAttempts: {"-1000"}, schema.HeaderAttempt: {"-1000"}, schema.HeaderTimeout: {"3000"},
	}, wait)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(schema.HeaderErrorCode); code != schema.CodeProviderError {
		t.Fatalf("code %q, want provider_error", code)
	}
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("provider called %d times, want 2 (one attempt and num_retries 1)", n)
	}
}

// bounce publishes a forged bounce of a JSON job on the retry subject,
// with reply subject reply.
func (e *env) bounce(reply string, h nats.Header) {
	e.t.Helper()
	h[schema.HeaderContentType] = []string{schema.ContentTypeJSON}
	if err := e.nc.PublishMsg(&nats.Msg{Subject: e.subjects.Retry(), Reply: reply, Header: h, Data: jobBody}); err != nil {
		e.t.Fatal(err)
	}
}

func TestDispatcher_ForgedBounce_NegativeFallbacks_CannotPanicDispatcher(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "tier2"}, Policy: dispatcher.Policy{
		Fallbacks: map[string][]string{"tier1": {"tier2"}},
	}})
	e.worker("tier2", "good", 2, echo())
	waitWorkers(t, d, "tier2", 1)
	inbox := nats.NewInbox()
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	e.bounce(inbox, nats.Header{
		schema.HeaderTier: {"tier1"}, schema.HeaderFallbacks: {"-1"}, schema.HeaderTierAttempts: {"9"},
		schema.HeaderErrorCode: {schema.CodeProviderError}, schema.HeaderStatus: {"502"},
	})
	if _, err := sub.NextMsg(wait); err != nil {
		t.Fatalf("no answer to the forged bounce: %v", err)
	}
	e.stillServes("tier2")
}

func TestDispatcher_ForgedBounce_CannotBuyRetriesBeyondBudget(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Policy: dispatcher.Policy{NumRetries: 2, BackoffInitial: time.Millisecond}})
	p := &failing{n: 0}
	e.worker("tier1", "a", 2, p)
	waitWorkers(t, d, "tier1", 1)
	inbox := nats.NewInbox()
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	// num_retries 2 and the default 5 fallbacks: at most 3 × 6 attempts.
	e.bounce(inbox, nats.Header{
		schema.HeaderTier: {"tier1"}, schema.HeaderAttempt: {"1000"}, schema.HeaderTierAttempts: {"1"},
		schema.HeaderErrorCode: {schema.CodeProviderError}, schema.HeaderStatus: {"502"},
	})
	reply, err := sub.NextMsg(wait)
	if err != nil {
		t.Fatalf("no answer to the forged bounce: %v", err)
	}
	if code := reply.Header.Get(schema.HeaderErrorCode); code != schema.CodeProviderError {
		t.Fatalf("code %q, want the bounced provider_error", code)
	}
	if n := p.calls.Load(); n != 0 {
		t.Fatalf("a bounce past the job's retry budget was retried: %d provider calls", n)
	}
}

func TestDispatcher_ForgedBounces_HeldCountTowardMaxQueue(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const maxQueue, n = 10, 1000
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, MaxQueue: maxQueue, Policy: dispatcher.Policy{NumRetries: 3}})
	e.worker("tier1", "a", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	prefix := nats.NewInbox()
	replies := make(chan *nats.Msg, n)
	sub, err := e.nc.ChanSubscribe(prefix+".*", replies)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	deadline := strconv.FormatInt(time.Now().Add(2*time.Hour).UnixMilli(), 10)
	for i := range n {
		e.bounce(prefix+"."+strconv.Itoa(i), nats.Header{
			schema.HeaderTier: {"tier1"}, schema.HeaderErrorCode: {schema.CodeRateLimited}, schema.HeaderStatus: {"429"},
			schema.HeaderRetryAfterMs: {"3600000"}, schema.HeaderDeadline: {deadline},
		})
	}
	timeout := time.After(wait)
	for got := 0; got < n-maxQueue; got++ {
		select {
		case m := <-replies:
			if code := m.Header.Get(schema.HeaderErrorCode); code != schema.CodeOverloaded {
				t.Fatalf("reply %d: code %q, want overloaded", got, code)
			}
		case <-timeout:
			t.Fatalf("%d of %d bounces over max_queue %d answered overloaded", got, n-maxQueue, maxQueue)
		}
	}
	for _, ts := range d.Stats().Tiers {
		if ts.Name == "tier1" && (ts.Retrying != maxQueue || ts.Queued != maxQueue) {
			t.Fatalf("tier1: %d retries held, queued %d; want %d each", ts.Retrying, ts.Queued, maxQueue)
		}
	}
	e.stillServes("tier1")
}

func TestDispatcher_LongReplySubject_AnsweredBadRequestAndConnectionSurvives(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	// A long worker id makes the forward's protocol line longer than the
	// producer's.
	e.worker("tier1", "a", 2, echo(), func(c *worker.Config) { c.ID = strings.Repeat("w", 100) })
	waitWorkers(t, d, "tier1", 1)
	jobs := e.subjects.Jobs("tier1")
	reply := "_INBOX." + strings.Repeat("r", 4096-len(jobs)-40-len("_INBOX."))
	sub, err := e.nc.SubscribeSync(reply)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: jobs, Reply: reply, Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}}, Data: jobBody}
	if err := e.nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	got, err := sub.NextMsg(wait)
	if err != nil {
		t.Fatalf("no answer on the long reply subject: %v", err)
	}
	if code := got.Header.Get(schema.HeaderErrorCode); code != schema.CodeBadRequest {
		t.Fatalf("code %q, want bad_request", code)
	}
	if msg := got.Header.Get(schema.HeaderErrorMessage); !strings.Contains(msg, strconv.Itoa(len(reply))) {
		t.Fatalf("message %q does not name the reply subject's length %d", msg, len(reply))
	}
	e.stillServes("tier1")
	if n := d.Stats().Dropped.BadReplies; n != 1 {
		t.Fatalf("bad replies counted %d, want 1", n)
	}
}

func TestDispatcher_ReplyOnLlmqSubject_NeitherForwardedNorAnswered(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "a", 1, echo())
	waitWorkers(t, d, "tier1", 1)
	trapSubject := e.subjects.Name() + ".ctl.trap"
	trap, err := e.nc.SubscribeSync(trapSubject)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: e.subjects.Jobs("tier1"), Reply: trapSubject, Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}}, Data: jobBody}
	if err := e.nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	e.stillServes("tier1")
	// The worker (capacity 1) and the dispatcher answer in order: anything
	// sent to the trap arrived before the ordinary job's reply.
	if n, _, _ := trap.Pending(); n != 0 {
		m, _ := trap.NextMsg(time.Second)
		t.Fatalf("something was published on %s: %s", trapSubject, m.Data)
	}
	s := d.Stats()
	if s.Dropped.BadReplies != 1 || s.Errors[schema.CodeBadRequest] != 0 {
		t.Fatalf("bad replies %d, bad_request answers %d; want the job counted and dropped", s.Dropped.BadReplies, s.Errors[schema.CodeBadRequest])
	}
}

// realWorker starts an echo worker of tier1 with a known id and beat
// interval 100 ms, and waits until the dispatcher uses it.
func (e *env) realWorker(d *dispatcher.Dispatcher, id string) {
	e.t.Helper()
	e.worker("tier1", "real", 4, echo(), func(c *worker.Config) { c.ID = id })
	waitWorkers(e.t, d, "tier1", 1)
}

func TestDispatcher_ForgedBeatNamingAnotherSubject_Refused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "probe"}})
	e.realWorker(d, "real-1")
	for id, subject := range map[string]string{"evil-1": "evil.sink.1", "evil-2": e.subjects.Jobs("tier1"), "evil-3": e.subjects.Worker("real-1")} {
		e.beat(id, schema.Heartbeat{Worker: id, Tier: "tier1", Subject: subject, State: schema.StateReady,
			Seq: 1, IntervalMs: 60_000, Capacity: 1000, Order: 1})
	}
	e.probe(d)
	s := d.Stats()
	for _, ts := range s.Tiers {
		if ts.Name == "tier1" && len(ts.Workers) != 1 {
			t.Fatalf("tier1 has %d workers after forged beats, want the real one", len(ts.Workers))
		}
	}
	if s.Dropped.BadHeartbeats != 3 {
		t.Fatalf("bad heartbeats counted %d, want 3", s.Dropped.BadHeartbeats)
	}
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := e.client.Complete(ctx, "tier1", ask("x"))
		cancel()
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		if resp.Routing.Worker != "real-1" {
			t.Fatalf("job %d answered by %s", i, resp.Routing.Worker)
		}
	}
}

func TestDispatcher_ForgedBeatSequence_CannotPinWorker(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "probe"}})
	e.realWorker(d, "real-1")
	e.beat("real-1", schema.Heartbeat{Worker: "real-1", Tier: "tier1", Subject: e.subjects.Worker("real-1"), State: schema.StateReady,
		Seq: 1 << 62, IntervalMs: 1 << 40, Capacity: 4, CoolingReason: schema.CodeProviderError,
		CoolingUntilMs: time.Now().Add(365 * 24 * time.Hour).UnixMilli()})
	e.probe(d)
	// The real worker's next beats take over again.
	awaitStats(t, d, "the real worker's own beat", func(s dispatcher.Stats) bool {
		for _, ts := range s.Tiers {
			for _, w := range ts.Workers {
				if w.Worker == "real-1" && w.Seq < 1<<62 && w.CoolingUntilMs == 0 {
					return true
				}
			}
		}
		return false
	})
	e.stillServes("tier1")
}

func TestDispatcher_HugeTimeouts_DoNotOverflowIntoTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "a", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	for _, h := range []nats.Header{
		{schema.HeaderTimeout: {"9223372036854775807"}},
		{schema.HeaderDeadline: {"9223372036854775807"}},
		{schema.HeaderTimeout: {"9223372036854775"}},
	} {
		reply, err := e.rawJob("tier1", h, wait)
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		if broker.IsError(reply) {
			t.Fatalf("%v: error %s %s", h, reply.Header.Get(schema.HeaderErrorCode), reply.Header.Get(schema.HeaderErrorMessage))
		}
	}
}

func TestDispatcher_BeatsNamingNewTiers_StateBounded(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rec := newRecorder()
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "probe"}, Observer: rec})
	const n = 20_000
	pad := strings.Repeat("t", 100)
	for i := range n {
		id := "w" + strconv.Itoa(i)
		e.beat(id, schema.Heartbeat{Worker: id, Tier: pad + strconv.Itoa(i), Subject: e.subjects.Worker(id), State: schema.StateReady,
			Seq: 1, IntervalMs: 60_000, Capacity: 1})
	}
	e.probe(d)
	s := d.Stats()
	if got := len(s.Tiers); got != 2+256 {
		t.Fatalf("%d tiers known after %d beats naming new tiers, want 2 configured + 256 learned", got, n)
	}
	if s.Dropped.TierLimit != n-256 {
		t.Fatalf("tier limit counted %d beats, want %d", s.Dropped.TierLimit, n-256)
	}
	rec.mu.Lock()
	labels := len(rec.beats)
	rec.mu.Unlock()
	if labels > 2+256 {
		t.Fatalf("the observer was told of %d tiers", labels)
	}
	reply, err := e.rawJob("nosuchtier", nil, wait)
	if err != nil {
		t.Fatalf("job to an unknown tier: %v", err)
	}
	if code := reply.Header.Get(schema.HeaderErrorCode); code != schema.CodeUnknownTier {
		t.Fatalf("code %q, want unknown_tier", code)
	}
	se := schema.DecodeError(schema.JSON, reply.Data)
	if !strings.Contains(se.Message, "known: probe, tier1, ") || !strings.HasSuffix(se.Message, " and 250 more)") || len(se.Message) > 2048 {
		t.Fatalf("unknown_tier message of %d bytes: %.300s", len(se.Message), se.Message)
	}
}

func TestDispatcher_BeatsOfNewWorkers_Bounded(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "probe"}, MaxWorkers: 100})
	for i := range 1000 {
		id := "w" + strconv.Itoa(i)
		e.beat(id, schema.Heartbeat{Worker: id, Tier: "tier1", Subject: e.subjects.Worker(id), State: schema.StateDraining,
			Seq: 1, IntervalMs: 60_000, Capacity: 1})
	}
	// The probe is the 1001st worker: refused too. Wait on the counter.
	e.beat("probe-1", schema.Heartbeat{Worker: "probe-1", Tier: "probe", Subject: e.subjects.Worker("probe-1"), State: schema.StateDraining,
		Seq: 1, IntervalMs: 60_000, Capacity: 1})
	s := awaitStats(t, d, "901 beats refused", func(s dispatcher.Stats) bool { return s.Dropped.WorkerLimit == 901 })
	for _, ts := range s.Tiers {
		if ts.Name == "tier1" && len(ts.Workers) != 100 {
			t.Fatalf("tier1 has %d workers, want the limit of 100", len(ts.Workers))
		}
	}
}

func TestDispatcher_LearnedTier_ForgottenAfterExpiry(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, LearnedTierExpiry: 50 * time.Millisecond})
	hb := schema.Heartbeat{Worker: "w1", Tier: "learned", Subject: e.subjects.Worker("w1"), State: schema.StateReady,
		Seq: 1, IntervalMs: 60_000, Capacity: 1}
	e.beat("w1", hb)
	awaitStats(t, d, "the learned tier", func(s dispatcher.Stats) bool { return len(s.Tiers) == 2 })
	hb.State, hb.Seq = schema.StateStopped, 2
	e.beat("w1", hb)
	awaitStats(t, d, "the learned tier forgotten", func(s dispatcher.Stats) bool { return len(s.Tiers) == 1 })
	reply, err := e.rawJob("learned", nil, wait)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(schema.HeaderErrorCode); code != schema.CodeUnknownTier {
		t.Fatalf("code %q, want unknown_tier", code)
	}
}

func TestDispatcher_ForgedBeatMovingWorkerToAnotherTier_Refused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "tier2", "probe"}})
	e.realWorker(d, "real-1")
	e.beat("real-1", schema.Heartbeat{Worker: "real-1", Tier: "tier2", Subject: e.subjects.Worker("real-1"), State: schema.StateReady,
		Seq: 1 << 40, IntervalMs: 60_000, Capacity: 10})
	e.probe(d)
	if n := d.Stats().Dropped.BadHeartbeats; n != 1 {
		t.Fatalf("bad heartbeats %d, want the forged one", n)
	}
	reply, err := e.rawJob("tier2", nil, wait)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(schema.HeaderErrorCode); code != schema.CodeNoDeployments {
		t.Fatalf("a tier2 job: code %q, want no_deployments (tier1's worker must not take it)", code)
	}
}

func TestDispatcher_Reconnect_AsksWorkersToAnnounce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ann, err := e.nc.SubscribeSync(e.subjects.Announce())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.srv.ClientURL(), nats.ReconnectWait(10*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	d, err := dispatcher.New(dispatcher.Config{Conn: nc, Subjects: e.subjects, Tiers: []string{"tier1"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	if _, err := ann.NextMsg(wait); err != nil {
		t.Fatalf("no announce at start: %v", err)
	}
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.NextMsg(wait); err != nil {
		t.Fatalf("no announce after the dispatcher's connection reconnected: %v", err)
	}
}
