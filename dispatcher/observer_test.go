package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu         sync.Mutex
	beats      map[string]int
	lost       []string
	dispatched map[string]int
	answered   map[[2]string]int
}

func newRecorder() *recorder {
	return &recorder{beats: map[string]int{}, dispatched: map[string]int{}, answered: map[[2]string]int{}}
}

func (r *recorder) Heartbeat(hb *schema.Heartbeat) {
	r.mu.Lock()
	r.beats[hb.Tier]++
	r.mu.Unlock()
}

func (r *recorder) WorkerLost(_, w string) {
	r.mu.Lock()
	r.lost = append(r.lost, w)
	r.mu.Unlock()
}

func (r *recorder) Dispatched(tier string, queued time.Duration) {
	r.mu.Lock()
	r.dispatched[tier]++
	r.mu.Unlock()
}

func (r *recorder) Answered(tier, code string) {
	r.mu.Lock()
	r.answered[[2]string{tier, code}]++
	r.mu.Unlock()
}

// await polls the recorder until ok holds: the observer is called on the
// dispatcher's goroutines, with no other signal to wait on.
func (r *recorder) await(t *testing.T, what string, ok func(r *recorder) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		r.mu.Lock()
		done := ok(r)
		r.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("observer never saw %s: beats %v lost %v dispatched %v answered %v", what, r.beats, r.lost, r.dispatched, r.answered)
		}
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
}

func TestObserver_SeesJobsErrorsAndHeartbeatsByTier(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rec := newRecorder()
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "empty"}, Observer: rec, StartupGrace: time.Millisecond})
	e.worker("tier1", "dep-a", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	for _, r := range e.sendAll("tier1", 5, "hi") {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := e.client.Complete(ctx, "no-such-tier", ask("x")); schema.CodeOf(err) != schema.CodeUnknownTier {
		t.Fatalf("err = %v, want unknown_tier", err)
	}
	if _, err := e.client.Complete(ctx, "empty", ask("x")); schema.CodeOf(err) != schema.CodeNoDeployments {
		t.Fatalf("err = %v, want no_deployments", err)
	}
	rec.await(t, "5 jobs dispatched to tier1", func(r *recorder) bool { return r.dispatched["tier1"] == 5 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// An unknown tier is reported as "", so made-up names cannot grow a
	// label set; a known tier by name.
	want := map[[2]string]int{{"", schema.CodeUnknownTier}: 1, {"empty", schema.CodeNoDeployments}: 1}
	if len(rec.answered) != len(want) {
		t.Errorf("answered %v, want %v", rec.answered, want)
	}
	for k, n := range want {
		if rec.answered[k] != n {
			t.Errorf("answered[%v] = %d, want %d", k, rec.answered[k], n)
		}
	}
	if rec.beats["tier1"] == 0 {
		t.Errorf("no heartbeat of tier1 observed: %v", rec.beats)
	}
	if len(rec.dispatched) != 1 {
		t.Errorf("dispatched %v, want tier1 only", rec.dispatched)
	}
}

func TestObserver_WorkerLost(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rec := newRecorder()
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Observer: rec, SweepInterval: 10 * time.Millisecond})
	doomed := e.srv.Connect("doomed")
	w := e.worker("tier1", "doomed", 1, echo(), func(c *worker.Config) { c.Conn = doomed })
	waitWorkers(t, d, "tier1", 1)
	doomed.Close() // no goodbye beat: the dispatcher must notice the silence
	rec.await(t, "the worker lost", func(r *recorder) bool { return len(r.lost) == 1 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.lost[0] != w.ID() {
		t.Fatalf("lost %v, want %s", rec.lost, w.ID())
	}
}

// microRequest asks subject and decodes the JSON reply into v.
func microRequest(t *testing.T, nc *nats.Conn, subject string, v any) error {
	t.Helper()
	m, err := nc.Request(subject, nil, wait)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		t.Fatalf("reply of %s is not JSON: %v: %s", subject, err, m.Data)
	}
	return nil
}

func TestService_DiscoveryAndStats(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Version: "v1.2.3"})
	e.worker("tier1", "dep-a", 2, echo(), func(c *worker.Config) { c.NoService = true })
	waitWorkers(t, d, "tier1", 1)
	for _, r := range e.sendAll("tier1", 3, "hi") {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}

	ping, _ := micro.ControlSubject(micro.PingVerb, dispatcher.ServiceName, "")
	var p micro.Ping
	if err := microRequest(t, e.nc, ping, &p); err != nil {
		t.Fatalf("$SRV.PING: %v", err)
	}
	if p.Name != dispatcher.ServiceName || p.Version != "1.2.3" || p.Metadata["dispatcher"] != d.ID() ||
		p.Metadata["prefix"] != e.subjects.Prefix || p.Metadata["build"] != "v1.2.3" {
		t.Fatalf("ping = %+v", p)
	}

	info, _ := micro.ControlSubject(micro.InfoVerb, dispatcher.ServiceName, p.ID)
	var in micro.Info
	if err := microRequest(t, e.nc, info, &in); err != nil {
		t.Fatalf("$SRV.INFO: %v", err)
	}
	if len(in.Endpoints) != 1 || in.Endpoints[0].Name != "stats" || in.Endpoints[0].Subject != d.ServiceSubject() ||
		in.Metadata["jobs_subject"] != e.subjects.JobsWildcard() || in.Description == "" {
		t.Fatalf("info = %+v", in)
	}

	var s dispatcher.Stats
	if err := microRequest(t, e.nc, d.ServiceSubject(), &s); err != nil {
		t.Fatalf("stats endpoint: %v", err)
	}
	if s.ID != d.ID() || s.Received != 3 || len(s.Tiers) != 1 || len(s.Tiers[0].Workers) != 1 {
		t.Fatalf("stats endpoint = %+v", s)
	}

	statsSubj, _ := micro.ControlSubject(micro.StatsVerb, dispatcher.ServiceName, p.ID)
	var st micro.Stats
	if err := microRequest(t, e.nc, statsSubj, &st); err != nil {
		t.Fatalf("$SRV.STATS: %v", err)
	}
	if len(st.Endpoints) != 1 || st.Endpoints[0].NumRequests != 1 {
		t.Fatalf("stats = %+v", st)
	}
	var sum dispatcher.ServiceSummary
	if err := json.Unmarshal(st.Endpoints[0].Data, &sum); err != nil || sum.Received != 3 || sum.Dispatched != 3 || sum.Workers != 1 {
		t.Fatalf("stats data = %s (%v)", st.Endpoints[0].Data, err)
	}

	// Stopped, it is gone from discovery.
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.nc.Request(ping, nil, wait); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("ping after Stop: %v, want no responders", err)
	}
}

func TestService_NoServiceAndNonSemverVersion(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.dispatcher(dispatcher.Config{NoService: true})
	ping, _ := micro.ControlSubject(micro.PingVerb, dispatcher.ServiceName, "")
	if _, err := e.nc.Request(ping, nil, wait); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("ping with NoService: %v, want no responders", err)
	}
	d := e.dispatcher(dispatcher.Config{Version: "dev"})
	var p micro.Ping
	if err := microRequest(t, e.nc, ping, &p); err != nil {
		t.Fatal(err)
	}
	if p.Version != "0.0.0" || p.Metadata["build"] != "dev" || p.Metadata["dispatcher"] != d.ID() {
		t.Fatalf("ping = %+v, want version 0.0.0 and build dev", p)
	}
}
