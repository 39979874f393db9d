package dispatcher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

func TestDispatcher_RoutesJobEndToEnd_ReplyCarriesRouting(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "tier2"}})
	e.worker("tier1", "t1-a", 2, echo())
	e.worker("tier2", "t2-a", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	waitWorkers(t, d, "tier2", 1)

	for _, tier := range []string{"tier1", "tier2"} {
		resp, err := e.client.Complete(context.Background(), tier, ask("hello "+tier))
		if err != nil {
			t.Fatalf("%s: %v", tier, err)
		}
		if got, want := resp.Text(), "echo: hello "+tier; got != want {
			t.Errorf("%s: text %q, want %q", tier, got, want)
		}
		r := resp.Routing
		if r == nil || r.Tier != tier || r.Dispatcher != d.ID() || r.Attempts != 1 || r.Provider != "test" {
			t.Errorf("%s: routing %+v", tier, r)
		}
		if resp.Object != schema.ObjectCompletion || resp.ID == "" || resp.Usage.TotalTokens != 3 {
			t.Errorf("%s: reply %+v", tier, resp)
		}
	}
}

func TestDispatcher_UnknownTier_RepliesTypedError(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	_, err := e.client.Complete(context.Background(), "tier9", ask("hi"))
	if schema.CodeOf(err) != schema.CodeUnknownTier {
		t.Fatalf("err = %v, want unknown_tier", err)
	}
}

func TestDispatcher_TierWithoutWorkers_RepliesNoDeploymentsAfterGrace(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, StartupGrace: 50 * time.Millisecond})
	start := time.Now()
	_, err := e.client.Complete(context.Background(), "tier1", ask("hi"))
	if schema.CodeOf(err) != schema.CodeNoDeployments {
		t.Fatalf("err = %v, want no_deployments", err)
	}
	if time.Since(start) > wait/2 {
		t.Fatalf("no_deployments took %s: should not wait for the job's deadline", time.Since(start))
	}
}

func TestDispatcher_NoDispatcher_ClientGetsNoDeployments(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, err := e.client.Complete(context.Background(), "tier1", ask("hi"))
	if schema.CodeOf(err) != schema.CodeNoDeployments {
		t.Fatalf("err = %v, want no_deployments (no responders)", err)
	}
}

func TestDispatcher_SimpleShuffle_UsesEveryWorker(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Seed: 1})
	for i := range 3 {
		e.worker("tier1", fmt.Sprintf("w%d", i), 64, echo())
	}
	waitWorkers(t, d, "tier1", 3)
	counts := byDeployment(t, e.sendAll("tier1", 300, "x"))
	for i := range 3 {
		if n := counts[fmt.Sprintf("w%d", i)]; n < 40 {
			t.Errorf("w%d got %d of 300 jobs; shuffle should spread them: %v", i, n, counts)
		}
	}
}

func TestDispatcher_SimpleShuffle_FollowsWeights(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Seed: 7})
	weights := map[string]float64{"heavy": 3, "light": 1}
	for dep, wt := range weights {
		e.worker("tier1", dep, 256, echo(), func(c *worker.Config) { c.Weight = wt })
	}
	waitWorkers(t, d, "tier1", 2)
	// Sent one at a time so that free capacity never limits the choice.
	const n = 400
	counts := map[string]int{}
	for range n {
		resp, err := e.client.Complete(context.Background(), "tier1", ask("x"))
		if err != nil {
			t.Fatal(err)
		}
		counts[resp.Routing.Deployment]++
	}
	share := float64(counts["heavy"]) / n
	if math.Abs(share-0.75) > 0.08 {
		t.Fatalf("heavy got %.2f of jobs, want 0.75±0.08 (weights 3:1): %v", share, counts)
	}
}

func TestDispatcher_LeastBusy_PrefersFreeWorker(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "least-busy"})
	busy := newGate()
	e.worker("tier1", "busy", 4, busy)
	waitWorkers(t, d, "tier1", 1)
	// Occupy three of busy's four slots.
	held := make(chan result, 3)
	for range 3 {
		go func() {
			r, err := e.client.Complete(context.Background(), "tier1", ask("hold"))
			held <- result{r, err}
		}()
	}
	busy.awaitStarted(t, 3)
	e.worker("tier1", "free", 4, echo())
	waitWorkers(t, d, "tier1", 2)
	// Each job finishes, and the dispatcher has seen it finish, before the
	// next is sent: free has 0 in flight, busy 3, so least-busy must pick
	// free every time.
	for i := range 20 {
		resp, err := e.client.Complete(context.Background(), "tier1", ask("x"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Routing.Deployment != "free" {
			t.Fatalf("job %d went to %s, want the free worker", i, resp.Routing.Deployment)
		}
		awaitSettled(t, d, "free", uint64(i+1))
	}
	close(busy.release)
	for range 3 {
		if r := <-held; r.err != nil {
			t.Fatal(r.err)
		}
	}
}

func TestDispatcher_LeastBusy_CountsOwnDispatchesBetweenBeats(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "least-busy"})
	a, b := newGate(), newGate()
	// Beats so rare that none arrives during the burst: only the
	// dispatcher's own count of what it sent can spread the jobs.
	slow := func(c *worker.Config) { c.HeartbeatInterval = time.Hour; c.StateInterval = time.Hour }
	e.worker("tier1", "a", 8, a, slow)
	e.worker("tier1", "b", 8, b, slow)
	waitWorkers(t, d, "tier1", 2)
	done := make(chan result, 8)
	for range 8 {
		go func() {
			r, err := e.client.Complete(context.Background(), "tier1", ask("x"))
			done <- result{r, err}
		}()
	}
	a.awaitStarted(t, 4)
	b.awaitStarted(t, 4)
	close(a.release)
	close(b.release)
	counts := map[string]int{}
	for range 8 {
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		counts[r.resp.Routing.Deployment]++
	}
	if counts["a"] != 4 || counts["b"] != 4 {
		t.Fatalf("8 jobs split %v between two idle workers, want 4 and 4 (no herding between beats)", counts)
	}
}

func TestDispatcher_LatencyBased_PrefersFastWorkerAfterProbing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "latency-based-routing"})
	slowP := newGate()
	e.worker("tier1", "fast", 64, echo())
	e.worker("tier1", "slow", 8, slowP)
	waitWorkers(t, d, "tier1", 2)
	// Make the slow worker's one sample slow: its call waits on the gate.
	go func() {
		time.Sleep(50 * time.Millisecond) // the recorded latency of the slow call, not a synchronisation
		close(slowP.release)
	}()
	// Untried workers are probed first, so both get a job early on.
	seen := map[string]int{}
	for range 40 {
		resp, err := e.client.Complete(context.Background(), "tier1", ask("x"))
		if err != nil {
			t.Fatal(err)
		}
		seen[resp.Routing.Deployment]++
	}
	if seen["slow"] == 0 {
		t.Fatalf("the untried slow worker was never probed: %v", seen)
	}
	// Once both have samples, the fast one takes the jobs.
	awaitSamples(t, d, "tier1", 2)
	counts := map[string]int{}
	for range 40 {
		resp, err := e.client.Complete(context.Background(), "tier1", ask("x"))
		if err != nil {
			t.Fatal(err)
		}
		counts[resp.Routing.Deployment]++
	}
	if counts["fast"] != 40 {
		t.Fatalf("after probing, jobs went %v; want all on the fast worker", counts)
	}
}

// awaitSettled waits until the dispatcher's view of a deployment's worker
// includes n jobs received from it and none in flight: beats are
// coalesced, so a worker that just finished may still look busy.
func awaitSettled(t *testing.T, d *dispatcher.Dispatcher, deployment string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, ts := range d.Stats().Tiers {
			for _, w := range ts.Workers {
				if w.Deployment == deployment && w.InFlight == 0 && w.Received[d.ID()] == n {
					return
				}
			}
		}
		time.Sleep(time.Millisecond) // polling a snapshot; the beat has no other signal
	}
	t.Fatalf("dispatcher never saw %s idle after %d jobs", deployment, n)
}

// awaitSamples waits until n workers of tier report latency samples.
func awaitSamples(t *testing.T, d *dispatcher.Dispatcher, tier string, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		have := 0
		for _, ts := range d.Stats().Tiers {
			if ts.Name == tier {
				for _, w := range ts.Workers {
					if w.Samples > 0 {
						have++
					}
				}
			}
		}
		if have >= n {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling a snapshot; the beat has no other signal
	}
	t.Fatalf("fewer than %d workers of %s reported latency samples", n, tier)
}

func TestDispatcher_NeverSendsWorkerMoreThanCapacity_ExcessWaits(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "least-busy"})
	g := newGate()
	e.worker("tier1", "only", 3, g)
	waitWorkers(t, d, "tier1", 1)
	done := make(chan result, 10)
	for range 10 {
		go func() {
			r, err := e.client.Complete(context.Background(), "tier1", ask("x"))
			done <- result{r, err}
		}()
	}
	g.awaitStarted(t, 3)
	// Seven jobs wait in the dispatcher, not in the worker.
	deadline := time.Now().Add(wait)
	for queued(d, "tier1") != 7 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a snapshot
	}
	if q := queued(d, "tier1"); q != 7 {
		t.Fatalf("dispatcher holds %d jobs, want 7", q)
	}
	close(g.release)
	for range 10 {
		if r := <-done; r.err != nil {
			t.Fatal(r.err)
		}
	}
	if m := g.maxSeen.Load(); m != 3 {
		t.Fatalf("worker ran %d jobs at once, capacity is 3", m)
	}
}

func queued(d *dispatcher.Dispatcher, tier string) int {
	for _, ts := range d.Stats().Tiers {
		if ts.Name == tier {
			return ts.Queued
		}
	}
	return -1
}

func TestDispatcher_QueueFull_RepliesOverloadedWithRetryAfter(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, MaxQueue: 2})
	g := newGate()
	e.worker("tier1", "only", 1, g)
	waitWorkers(t, d, "tier1", 1)
	done := make(chan result, 3)
	for range 3 {
		go func() {
			r, err := e.client.Complete(context.Background(), "tier1", ask("x"))
			done <- result{r, err}
		}()
	}
	g.awaitStarted(t, 1)
	deadline := time.Now().Add(wait)
	for queued(d, "tier1") != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a snapshot
	}
	_, err := e.client.Complete(context.Background(), "tier1", ask("one too many"))
	var se *schema.Error
	if !asError(err, &se) || se.Code != schema.CodeOverloaded || se.RetryAfter() <= 0 {
		t.Fatalf("err = %v, want overloaded with a retry-after", err)
	}
	close(g.release)
	for range 3 {
		if r := <-done; r.err != nil {
			t.Fatal(r.err)
		}
	}
}

func asError(err error, target **schema.Error) bool {
	e, ok := err.(*schema.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestDispatcher_JobDeadlinePassesInQueue_RepliesTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, SweepInterval: 10 * time.Millisecond})
	g := newGate()
	e.worker("tier1", "only", 1, g)
	waitWorkers(t, d, "tier1", 1)
	go func() { _, _ = e.client.Complete(context.Background(), "tier1", ask("hold")) }()
	g.awaitStarted(t, 1)
	// Reply before the client's own deadline: the dispatcher's deadline is
	// the job's, and the client waits a little longer for the answer.
	msg := &nats.Msg{Subject: e.subjects.Jobs("tier1"), Header: nats.Header{
		schema.HeaderContentType: {schema.ContentTypeJSON},
		schema.HeaderTimeout:     {"200"},
	}, Data: []byte(`{"messages":[{"role":"user","content":"late"}]}`)}
	reply, err := e.nc.RequestMsg(msg, wait)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(schema.HeaderErrorCode); code != schema.CodeTimeout {
		t.Fatalf("reply code %q, want timeout; body %s", code, reply.Data)
	}
	close(g.release)
}

func TestDispatcher_JSONProducer_GetsJSONReply(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "a", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	msg := &nats.Msg{Subject: e.subjects.Jobs("tier1"), Header: nats.Header{schema.HeaderContentType: {"application/json"}},
		Data: []byte(`{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],"stop":"END","max_tokens":5}`)}
	reply, err := e.nc.RequestMsg(msg, wait)
	if err != nil {
		t.Fatal(err)
	}
	if ct := reply.Header.Get(schema.HeaderContentType); ct != schema.ContentTypeJSON {
		t.Fatalf("content type %q", ct)
	}
	var resp map[string]any
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		t.Fatalf("reply is not JSON: %v: %q", err, reply.Data)
	}
	choices := resp["choices"].([]any)
	msgOut := choices[0].(map[string]any)["message"].(map[string]any)
	if msgOut["content"] != "echo: hi there" || resp["object"] != "chat.completion" {
		t.Fatalf("reply %s", reply.Data)
	}
	if resp["routing"].(map[string]any)["tier"] != "tier1" {
		t.Fatalf("routing missing: %s", reply.Data)
	}
}

func TestDispatcher_MsgpackProducer_GetsMsgpackReply(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "a", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	body, err := msgpack.Marshal(map[string]any{"messages": []map[string]any{{"role": "user", "content": "packed"}}})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := e.nc.Request(e.subjects.Jobs("tier1"), body, wait)
	if err != nil {
		t.Fatal(err)
	}
	var resp schema.Response
	if err := msgpack.Unmarshal(reply.Data, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Text() != "echo: packed" {
		t.Fatalf("text %q", resp.Text())
	}
}

func TestDispatcher_BadInput_EachGetsTypedErrorReply(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "a", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	jsonH := nats.Header{schema.HeaderContentType: {"application/json"}}
	cases := []struct {
		name   string
		header nats.Header
		body   []byte
		code   string
		status string
	}{
		{"malformed json", jsonH, []byte(`{"messages":[`), schema.CodeBadRequest, "400"},
		{"malformed msgpack", nil, []byte{0xc1, 0xff, 0x00}, schema.CodeBadRequest, "400"},
		{"wrong field type", jsonH, []byte(`{"messages":"hello"}`), schema.CodeBadRequest, "400"},
		{"empty messages", jsonH, []byte(`{"messages":[]}`), schema.CodeBadRequest, "400"},
		{"missing messages", jsonH, []byte(`{"max_tokens":3}`), schema.CodeBadRequest, "400"},
		{"bad role", jsonH, []byte(`{"messages":[{"role":"robot","content":"x"}]}`), schema.CodeBadRequest, "400"},
		{"empty body", jsonH, nil, schema.CodeBadRequest, "400"},
		{"bad deadline header", nats.Header{schema.HeaderDeadline: {"soon"}}, []byte{0x80}, schema.CodeBadRequest, "400"},
	}
	for _, c := range cases {
		msg := &nats.Msg{Subject: e.subjects.Jobs("tier1"), Header: c.header, Data: c.body}
		reply, err := e.nc.RequestMsg(msg, wait)
		if err != nil {
			t.Fatalf("%s: %v (want a typed error reply, not silence)", c.name, err)
		}
		if got := reply.Header.Get(schema.HeaderErrorCode); got != c.code {
			t.Errorf("%s: code %q, want %q", c.name, got, c.code)
		}
		if got := reply.Header.Get(schema.HeaderStatus); got != c.status {
			t.Errorf("%s: status %q, want %q", c.name, got, c.status)
		}
		se := schema.DecodeError(broker.CodecOf(reply), reply.Data)
		if se.Code != c.code || se.Message == "" {
			t.Errorf("%s: body error %+v", c.name, se)
		}
	}
	// The fleet still serves after all that.
	if _, err := e.client.Complete(context.Background(), "tier1", ask("still here")); err != nil {
		t.Fatal(err)
	}
}

func TestDispatcher_JobWithoutReplySubject_IsCounted(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	if err := e.nc.Publish(e.subjects.Jobs("tier1"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for d.Stats().NoReply != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	if n := d.Stats().NoReply; n != 1 {
		t.Fatalf("no-reply counter %d, want 1", n)
	}
}

func TestDispatcher_WorkerJoins_UsedWithinOneInterval(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	e.worker("tier1", "first", 4, echo())
	waitWorkers(t, d, "tier1", 1)
	start := time.Now()
	e.worker("tier1", "second", 4, echo(), func(c *worker.Config) { c.HeartbeatInterval = time.Second })
	waitWorkers(t, d, "tier1", 2)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("new worker known after %s", took)
	}
	counts := byDeployment(t, e.sendAll("tier1", 100, "x"))
	if counts["second"] == 0 {
		t.Fatalf("new worker got no jobs: %v", counts)
	}
}

func TestDispatcher_WorkerStops_NoLongerUsed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	stay := e.worker("tier1", "stay", 4, echo())
	leave := e.worker("tier1", "leave", 4, echo())
	waitWorkers(t, d, "tier1", 2)
	if err := leave.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for len(workersOf(d, "tier1")) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a snapshot
	}
	if ws := workersOf(d, "tier1"); len(ws) != 1 || ws[0] != stay.ID() {
		t.Fatalf("workers after stop: %v", ws)
	}
	counts := byDeployment(t, e.sendAll("tier1", 50, "x"))
	if counts["leave"] != 0 || counts["stay"] != 50 {
		t.Fatalf("jobs went %v after 'leave' stopped", counts)
	}
}

func workersOf(d *dispatcher.Dispatcher, tier string) []string {
	var out []string
	for _, ts := range d.Stats().Tiers {
		if ts.Name == tier {
			for _, w := range ts.Workers {
				out = append(out, w.Worker)
			}
		}
	}
	return out
}

func TestDispatcher_SilentWorker_DroppedAfterThreeMissedBeats(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, SweepInterval: 10 * time.Millisecond})
	// A worker that beats once and goes silent, as a killed process does.
	hb := schema.Heartbeat{Worker: "ghost", Tier: "tier1", Deployment: "ghost", Subject: e.subjects.Worker("ghost"),
		State: schema.StateReady, Seq: 1, IntervalMs: 100, Capacity: 4}
	data, _ := msgpack.Marshal(&hb)
	beatAt := time.Now()
	if err := e.nc.Publish(e.subjects.Heartbeat("ghost"), data); err != nil {
		t.Fatal(err)
	}
	waitWorkers(t, d, "tier1", 1)
	deadline := time.Now().Add(wait)
	for len(workersOf(d, "tier1")) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a snapshot
	}
	if ws := workersOf(d, "tier1"); len(ws) != 0 {
		t.Fatalf("silent worker still listed: %v", ws)
	}
	if gone := time.Since(beatAt); gone < 300*time.Millisecond {
		t.Fatalf("dropped after %s, before three intervals (300ms)", gone)
	}
}

func TestDispatcher_TwoDispatchers_ShareJobsAndAnswerAll(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d1 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "least-busy"})
	d2 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "least-busy"})
	g := newGate()
	e.worker("tier1", "a", 2, g)
	e.worker("tier1", "b", 2, echo())
	waitWorkers(t, d1, "tier1", 2)
	waitWorkers(t, d2, "tier1", 2)
	close(g.release)
	rs := e.sendAll("tier1", 200, "x")
	counts := byDeployment(t, rs)
	if counts["a"]+counts["b"] != 200 {
		t.Fatalf("answers %v, want 200", counts)
	}
	s1, s2 := d1.Stats(), d2.Stats()
	if s1.Dispatched == 0 || s2.Dispatched == 0 || s1.Dispatched+s2.Dispatched != 200 {
		t.Fatalf("dispatched %d + %d, want both > 0 and 200 in all", s1.Dispatched, s2.Dispatched)
	}
	if m := g.maxSeen.Load(); m > 2+2 {
		t.Fatalf("worker a ran %d at once with capacity 2 and backlog 2", m)
	}
}

func TestDispatcher_Stop_HandsQueuedJobsToAnotherDispatcher(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d1 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	g := newGate()
	e.worker("tier1", "a", 1, g)
	waitWorkers(t, d1, "tier1", 1)
	done := make(chan result, 4)
	for range 4 {
		go func() {
			r, err := e.client.Complete(context.Background(), "tier1", ask("x"))
			done <- result{r, err}
		}()
	}
	g.awaitStarted(t, 1)
	deadline := time.Now().Add(wait)
	for queued(d1, "tier1") != 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a snapshot
	}
	d2 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}})
	waitWorkers(t, d2, "tier1", 1)
	if err := d1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	for range 4 {
		if r := <-done; r.err != nil {
			t.Fatalf("job lost in hand-back: %v", r.err)
		}
	}
	if d2.Stats().Dispatched != 3 {
		t.Fatalf("second dispatcher dispatched %d, want the 3 handed back", d2.Stats().Dispatched)
	}
}

func TestDispatcher_StopTwice_IsSafe(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{})
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
