package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

// hostileBeat is 14 bytes of msgpack whose "jobs" map holds an array
// claiming 2^32-1 elements: decoded without the allocation guard it is
// "fatal error: runtime: out of memory".
var hostileBeat = []byte{0x81, 0xa4, 'j', 'o', 'b', 's', 0x81, 0xa1, 'd', 0xdd, 0xff, 0xff, 0xff, 0xff}

// forgedBeat is a well-formed heartbeat of worker id serving tier.
func forgedBeat(t *testing.T, s broker.Subjects, id, tier string) *nats.Msg {
	t.Helper()
	data, err := schema.MsgPack.Marshal(&schema.Heartbeat{
		Worker: id, Tier: tier, Deployment: "forged", Provider: "x", Model: "x", Subject: s.Worker(id),
		State: schema.StateReady, Seq: 1, IntervalMs: 60_000, Capacity: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: s.Heartbeat(id), Data: data}
}

// modelIDs lists the ids GET /v1/models answers.
func (e *env) modelIDs() []string {
	e.t.Helper()
	resp := e.do("GET", "/v1/models", "")
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&list) != nil {
		e.t.Fatalf("GET /v1/models: %d", resp.StatusCode)
	}
	ids := make([]string, len(list.Data))
	for i, m := range list.Data {
		ids[i] = m.ID
	}
	return ids
}

// A model name longer than a NATS protocol line used to become the job's
// subject: the server closed the gateway's connection on that publish and
// every later request was a 500.
func TestChat_LongModel_IsNotFoundAndLaterRequestsWork(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	e.worker("tier1", "dep-a", 2, echo())
	long := strings.Repeat("m", 5000)
	for _, extra := range []string{"", `,"stream":true`} {
		got := wantError(t, e.post(chat(long, "x", extra)), 404, "invalid_request_error", "model_not_found", schema.CodeUnknownTier)
		if len(got.Error.Message) > 512 || got.Error.Param == nil || *got.Error.Param != "model" {
			t.Errorf("error %d bytes, param %v: %.200s", len(got.Error.Message), got.Error.Param, got.Error.Message)
		}
	}
	wantError(t, e.do("GET", "/v1/models/"+long, ""), 404, "invalid_request_error", "model_not_found", "")
	for i := range 3 {
		resp := e.post(chat("tier1", fmt.Sprint("after ", i)))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d after the long model: status %d", i, resp.StatusCode)
		}
	}
	for _, r := range e.rec.await(t, 5) {
		if r.Tier != "" && r.Tier != "tier1" {
			t.Errorf("report tier %.40q: a made-up model became a label", r.Tier)
		}
	}
}

// Heartbeats are untrusted: a hostile body, a beat on another worker's
// subject, one naming a foreign job subject or a bad tier are dropped and
// counted, and the gateway goes on serving.
//
// No dispatcher runs here: the gateway is alone with the beats (a job is
// answered no_deployments, which takes a live NATS connection).
func TestHeartbeats_HostileBeatsAreDroppedAndCounted(t *testing.T) {
	t.Parallel()
	e := alone(t, gateway.Config{Tiers: []string{"tier1"}})
	s := e.subjects
	pub := e.srv.Connect("attacker")
	msgs := []*nats.Msg{{Subject: s.Heartbeat("evil"), Data: hostileBeat}}
	m := forgedBeat(t, s, "w1", "spoofed")
	m.Subject = s.Heartbeat("w2") // w1's beat on w2's subject
	msgs = append(msgs, m)
	sink := &schema.Heartbeat{Worker: "w3", Tier: "sunk", Subject: "evil.sink.1", State: schema.StateReady, Capacity: 1, IntervalMs: 100}
	data, _ := schema.MsgPack.Marshal(sink)
	msgs = append(msgs, &nats.Msg{Subject: s.Heartbeat("w3"), Data: data},
		forgedBeat(t, s, "w4", "a b"), forgedBeat(t, s, "w5", strings.Repeat("t", 5000)))
	for _, m := range msgs {
		if err := pub.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for e.g.ServiceStats().DroppedBeats < uint64(len(msgs)) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want %d beats dropped", e.g.ServiceStats(), len(msgs))
		}
		time.Sleep(5 * time.Millisecond) // polling a counter
	}
	for _, id := range e.modelIDs() {
		if id != "tier1" {
			t.Errorf("models list %.40q, learned from a refused beat", id)
		}
	}
	wantError(t, e.post(chat("tier1", "still there")), 503, "api_error", "no_deployments", schema.CodeNoDeployments)
}

// 20k beats naming new tiers used to grow the gateway's tiers and its
// metric labels without bound.
func TestHeartbeats_ForgedTiersAreBounded(t *testing.T) {
	t.Parallel()
	const forged = 20_000
	e := alone(t, gateway.Config{Tiers: []string{"tier1"}})
	pub := e.srv.Connect("attacker")
	for i := range forged {
		if err := pub.PublishMsg(forgedBeat(t, e.subjects, fmt.Sprint("ft", i), fmt.Sprint("forged", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	st := e.awaitBeats(forged)
	if len(st.Tiers) != gateway.DefaultMaxTiers+1 || st.Workers != gateway.DefaultMaxTiers {
		t.Fatalf("%d tiers, %d workers after %d forged beats; want %d learned tiers besides tier1", len(st.Tiers), st.Workers, forged, gateway.DefaultMaxTiers)
	}
	if ids := e.modelIDs(); len(ids) != gateway.DefaultMaxTiers+1 {
		t.Fatalf("/v1/models lists %d tiers", len(ids))
	}
	// Tier labels: the configured tier and an admitted one are labels; a
	// dropped one and a made-up one are not. One request at a time, so
	// reports come in order.
	models := []string{"tier1", "forged0", fmt.Sprint("forged", forged-1), "never-beat"}
	want := []string{"tier1", "forged0", "", ""}
	for i, model := range models {
		wantError(t, e.post(chat(model, "x")), 503, "api_error", "no_deployments", schema.CodeNoDeployments)
		if r := e.rec.await(t, i+1)[i]; r.Tier != want[i] {
			t.Errorf("model %s: tier label %q, want %q", model, r.Tier, want[i])
		}
	}
}

// Workers are capped, and a forged worker is forgotten three of its
// intervals after its last beat, making room again.
func TestHeartbeats_ForgedWorkersAreBoundedAndExpire(t *testing.T) {
	t.Parallel()
	const maxWorkers, forged = 50, 500
	e := alone(t, gateway.Config{MaxWorkers: maxWorkers})
	pub := e.srv.Connect("attacker")
	for i := range forged {
		if err := pub.PublishMsg(forgedBeat(t, e.subjects, fmt.Sprint("fw", i), "crowded")); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := e.awaitBeats(forged); st.Workers != maxWorkers || st.DroppedBeats != forged-maxWorkers {
		t.Fatalf("%d workers followed, %d dropped; want the cap, %d", st.Workers, st.DroppedBeats, maxWorkers)
	}

	// Workers that claim the shortest interval (10 ms) fill the cap and
	// expire 30 ms after their beat: a new worker then gets in.
	e = alone(t, gateway.Config{MaxWorkers: maxWorkers})
	pub = e.srv.Connect("attacker")
	for i := range maxWorkers {
		m := forgedBeat(t, e.subjects, fmt.Sprint("fw", i), "crowded")
		var hb schema.Heartbeat
		_ = schema.MsgPack.Unmarshal(m.Data, &hb)
		hb.IntervalMs = 1
		m.Data, _ = schema.MsgPack.Marshal(&hb)
		if err := pub.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(wait)
	for !slices.Contains(e.modelIDs(), "late") {
		if time.Now().After(deadline) {
			t.Fatalf("a new worker was never admitted: %+v", e.g.ServiceStats())
		}
		// After the others on the same connection: the cap is full when
		// the first one arrives.
		if err := pub.PublishMsg(forgedBeat(t, e.subjects, "late-worker", "late")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // beating, as a worker does
	}
}

// awaitBeats waits until the gateway has handled n beats (followed or
// dropped) and returns its stats.
func (e *env) awaitBeats(n int) gateway.ServiceStats {
	e.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		st := e.g.ServiceStats()
		if len(st.Tiers) > gateway.DefaultMaxTiers+1 {
			e.t.Fatalf("%d tiers known; at most %d learned", len(st.Tiers), gateway.DefaultMaxTiers)
		}
		if uint64(st.Workers)+st.DroppedBeats >= uint64(n) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d beats not all handled: %d workers, %d tiers, %d dropped", n, st.Workers, len(st.Tiers), st.DroppedBeats)
		}
		time.Sleep(10 * time.Millisecond) // polling counters
	}
}

func TestChatCompletion_ClientGoneCancelsThePlainJob(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	e.worker("tier1", "dep-a", 1, provider.Func(func(ctx context.Context, _ *schema.Request) (*schema.Response, error) {
		started <- struct{}{}
		<-ctx.Done() // a slow provider: it ends when its call is cancelled
		ended <- ctx.Err()
		return nil, provider.TransportError(ctx, ctx.Err())
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v1/chat/completions", strings.NewReader(chat("tier1", "x")))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := e.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-started:
	case <-time.After(wait):
		t.Fatal("the provider call never started")
	}
	cancel() // the client goes away
	<-done
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("provider ctx ended with %v, want cancelled", err)
		}
	case <-time.After(wait):
		t.Fatal("the provider call was not cancelled")
	}
}

// A job still queued in a dispatcher when its client goes away is dropped
// by the worker that gets it: the provider never sees it.
func TestChatCompletion_ClientGoneWhileQueuedDropsTheJobUnrun(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	release := make(chan struct{})
	calls := make(chan string, 2)
	outcomes := &outcomeLog{ch: make(chan string, 4)}
	w := e.worker("tier1", "dep-a", 1, provider.Func(func(ctx context.Context, req *schema.Request) (*schema.Response, error) {
		text := string(req.Messages[0].Content)
		calls <- text
		if text == "first" {
			<-release
		}
		return echo()(ctx, req)
	}), func(c *worker.Config) { c.Observer = outcomes })
	first := make(chan int, 1)
	go func() {
		resp, err := e.http.Post(e.base+"/v1/chat/completions", "application/json", strings.NewReader(chat("tier1", "first")))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	if got := <-calls; got != "first" {
		t.Fatalf("call %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v1/chat/completions", strings.NewReader(chat("tier1", "second")))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := e.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(wait)
	for e.d.Stats().Tiers[0].Queued == 0 { // the second job waits for the busy worker
		if time.Now().After(deadline) {
			t.Fatal("the second job was never queued")
		}
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
	cancel()
	<-done
	for w.ServiceStats().EarlyCancels != 1 { // the gateway's cancel reached the worker
		if time.Now().After(deadline) {
			t.Fatal("the worker never heard the cancel")
		}
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
	close(release)
	if st := <-first; st != http.StatusOK {
		t.Fatalf("first request: %d", st)
	}
	for _, want := range []string{worker.OutcomeOK, schema.CodeCancelled} {
		select {
		case got := <-outcomes.ch:
			if got != want {
				t.Fatalf("job ended %q, want %q", got, want)
			}
		case <-time.After(wait):
			t.Fatalf("no job ended %q", want)
		}
	}
	select {
	case text := <-calls:
		t.Fatalf("the abandoned job reached the provider: %q", text)
	default:
	}
	if n := w.ServiceStats().EarlyCancels; n != 0 {
		t.Fatalf("%d cancels still kept after their job was dropped", n)
	}
}

// outcomeLog is a worker.Observer that sends each job's outcome.
type outcomeLog struct{ ch chan string }

func (o *outcomeLog) JobDone(r worker.JobReport)                                     { o.ch <- r.Outcome }
func (o *outcomeLog) CooledDown(tier, deployment, reason string, rest time.Duration) {}
