package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/metrics"
	"github.com/llmq/llmq/metrics/metricstest"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

const wait = 20 * time.Second

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestObservers_CountByBoundedLabels(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Config{NoRuntime: true})
	w := m.Worker()
	w.JobDone(worker.JobReport{Tier: "t1", Deployment: "d1", Outcome: worker.OutcomeOK,
		Routing: &schema.Routing{CallMs: 250, TTFTMs: 40, CostUSD: 0.25}, Usage: schema.Usage{PromptTokens: 10, CompletionTokens: 20}})
	w.JobDone(worker.JobReport{Tier: "t1", Deployment: "d1", Outcome: worker.OutcomeOK,
		Routing: &schema.Routing{CallMs: 750, CostUSD: 0.5}, Usage: schema.Usage{PromptTokens: 1, CompletionTokens: 2}})
	w.JobDone(worker.JobReport{Tier: "t1", Deployment: "d1", Outcome: schema.CodeRateLimited})
	w.JobDone(worker.JobReport{Tier: "t1", Deployment: "d1", Outcome: "made-up"})
	w.JobDone(worker.JobReport{Tier: "t1", Deployment: "d1", Outcome: worker.OutcomeDropped})
	w.CooledDown("t1", "d1", schema.CodeRateLimited, 5*time.Second)
	d := m.Dispatcher()
	d.Heartbeat(&schema.Heartbeat{Tier: "t1"})
	d.WorkerLost("t1", "w1")
	d.Dispatched("t1", 100*time.Millisecond)
	d.Answered("", schema.CodeUnknownTier)
	d.Answered("t1", schema.CodeOverloaded)
	g := m.Gateway()
	g.RequestStarted()
	g.RequestStarted()
	g.RequestDone(gateway.RequestReport{Tier: "t1", Stream: true, Status: 200, Duration: time.Second, TTFT: 100 * time.Millisecond,
		Routing: &schema.Routing{CostUSD: 0.25}})
	g.RequestStarted()
	g.RequestDone(gateway.RequestReport{Tier: "", Status: 404, Code: schema.CodeUnknownTier, Duration: time.Millisecond})

	s := metricstest.Gather(t, m.Registry())
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"llmq_worker_jobs_total", []string{"tier", "t1", "deployment", "d1", "outcome", "ok"}, 2},
		{"llmq_worker_jobs_total", []string{"outcome", "rate_limited"}, 1},
		{"llmq_worker_jobs_total", []string{"outcome", metrics.OtherCode}, 1},
		{"llmq_worker_jobs_total", []string{"outcome", "dropped"}, 1},
		{"llmq_worker_jobs_total", nil, 5},
		{"llmq_worker_input_tokens_total", nil, 11},
		{"llmq_worker_output_tokens_total", nil, 22},
		{"llmq_worker_cost_usd_total", []string{"tier", "t1"}, 0.75},
		{"llmq_worker_call_duration_seconds_count", nil, 2},
		{"llmq_worker_call_duration_seconds_sum", nil, 1},
		{"llmq_worker_ttft_seconds_count", nil, 1},
		{"llmq_worker_cooldowns_total", []string{"reason", "rate_limited"}, 1},
		{"llmq_dispatcher_heartbeats_total", []string{"tier", "t1"}, 1},
		{"llmq_dispatcher_workers_lost_total", []string{"tier", "t1"}, 1},
		{"llmq_dispatcher_jobs_dispatched_total", []string{"tier", "t1"}, 1},
		{"llmq_dispatcher_queue_wait_seconds_sum", nil, 0.1},
		{"llmq_dispatcher_errors_total", []string{"tier", metrics.UnknownTier, "code", "unknown_tier"}, 1},
		{"llmq_dispatcher_errors_total", []string{"tier", "t1", "code", "overloaded"}, 1},
		{"llmq_gateway_requests_total", []string{"tier", "t1", "stream", "true", "status", "200"}, 1},
		{"llmq_gateway_requests_total", []string{"tier", metrics.UnknownTier, "stream", "false", "status", "404"}, 1},
		{"llmq_gateway_in_flight_requests", nil, 1},
		{"llmq_gateway_ttft_seconds_count", nil, 1},
		{"llmq_gateway_cost_usd_total", nil, 0.25},
	}
	for _, w := range want {
		if got := s.Sum(w.name, w.labels...); math.Abs(got-w.value) > 1e-9 {
			t.Errorf("%s%v = %g, want %g", w.name, w.labels, got, w.value)
		}
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// fakeDispatcher and fakeWorker are the sources read at each scrape.
type fakeDispatcher struct{ s dispatcher.Stats }

func (f fakeDispatcher) Stats() dispatcher.Stats { return f.s }

type fakeWorker struct {
	tier, dep string
	in, capa  int
	cooling   time.Time
}

func (f fakeWorker) Tier() string                          { return f.tier }
func (f fakeWorker) Deployment() string                    { return f.dep }
func (f fakeWorker) Load() (int, int)                      { return f.in, f.capa }
func (f fakeWorker) Cooling() (time.Time, string)          { return f.cooling, "" }
func (f fakeWorker) with(in int) fakeWorker                { f.in = in; return f }
func (f fakeWorker) coolingFor(d time.Duration) fakeWorker { f.cooling = time.Now().Add(d); return f }

func TestSources_ReadAtScrapeAndSummed(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Config{NoRuntime: true})
	future := time.Now().Add(time.Minute).UnixMilli()
	stats := func(received uint64) dispatcher.Stats {
		return dispatcher.Stats{Received: received, Retries: 2, Fallbacks: 1, Redispatched: 1, NoReply: 1,
			Tiers: []dispatcher.TierStats{{Name: "t1", Queued: 3, BatchQueued: 1, Workers: []schema.Heartbeat{
				{Worker: "a", State: schema.StateReady, InFlight: 2, Capacity: 4},
				{Worker: "b", State: schema.StateReady, InFlight: 1, Capacity: 2, CoolingUntilMs: future},
				{Worker: "c", State: schema.StateDraining, InFlight: 1, Capacity: 2},
			}}}}
	}
	m.AddDispatcher(fakeDispatcher{stats(10)})
	m.AddDispatcher(fakeDispatcher{stats(5)})
	base := fakeWorker{tier: "t1", dep: "d1", capa: 4}
	m.AddWorker(base.with(1))
	m.AddWorker(base.with(2).coolingFor(time.Minute)) // same deployment: one series
	m.AddWorker(fakeWorker{tier: "t2", dep: "d2", capa: 8})

	s := metricstest.Gather(t, m.Registry())
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"llmq_dispatcher_jobs_received_total", nil, 15},
		{"llmq_dispatcher_retries_total", nil, 4},
		{"llmq_dispatcher_fallbacks_total", nil, 2},
		{"llmq_dispatcher_redispatched_total", nil, 2},
		{"llmq_dispatcher_jobs_dropped_total", nil, 2},
		{"llmq_dispatcher_queue_depth_jobs", []string{"tier", "t1", "priority", "interactive"}, 6},
		{"llmq_dispatcher_queue_depth_jobs", []string{"tier", "t1", "priority", "batch"}, 2},
		{"llmq_dispatcher_workers", []string{"tier", "t1", "state", "ready"}, 2},
		{"llmq_dispatcher_workers", []string{"tier", "t1", "state", "cooling"}, 2},
		{"llmq_dispatcher_workers", []string{"tier", "t1", "state", "draining"}, 2},
		{"llmq_dispatcher_in_flight_jobs", []string{"tier", "t1"}, 8},
		{"llmq_dispatcher_capacity_jobs", []string{"tier", "t1"}, 16},
		{"llmq_worker_in_flight_jobs", []string{"tier", "t1", "deployment", "d1"}, 3},
		{"llmq_worker_capacity_jobs", []string{"tier", "t1", "deployment", "d1"}, 8},
		{"llmq_worker_cooling_down", []string{"tier", "t1", "deployment", "d1"}, 1},
		{"llmq_worker_cooling_down", []string{"tier", "t2", "deployment", "d2"}, 0},
		{"llmq_worker_capacity_jobs", []string{"tier", "t2"}, 8},
	}
	for _, w := range want {
		if got := s.Sum(w.name, w.labels...); got != w.value {
			t.Errorf("%s%v = %g, want %g", w.name, w.labels, got, w.value)
		}
	}
	if n := len(s["llmq_worker_in_flight_jobs"]); n != 2 {
		t.Errorf("%d in-flight series, want one per tier and deployment (2)", n)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	if b := metrics.DefaultBuckets(); b[0] != 0.005 || b[len(b)-1] != 600 {
		t.Errorf("buckets %v, want 5 ms to 10 min", b)
	}
	if metrics.DefaultListen != "127.0.0.1:9464" {
		t.Errorf("DefaultListen %q", metrics.DefaultListen)
	}
	m := metrics.New(metrics.Config{NoRuntime: true})
	m.Worker().JobDone(worker.JobReport{Tier: "t", Deployment: "d", Outcome: worker.OutcomeOK, Routing: &schema.Routing{CallMs: 1}})
	var les []string
	for _, f := range func() []*dto.MetricFamily { fs, _ := m.Registry().Gather(); return fs }() {
		if f.GetName() == "llmq_worker_call_duration_seconds" {
			for _, b := range f.GetMetric()[0].GetHistogram().GetBucket() {
				les = append(les, strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
			}
		}
	}
	if len(les) != 16 || les[0] != "0.005" || les[15] != "600" {
		t.Errorf("call duration buckets %v", les)
	}
}

func TestRegistriesAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := metrics.New(metrics.Config{}), metrics.New(metrics.Config{Namespace: "other"})
	a.Dispatcher().Dispatched("t", 0)
	if got := metricstest.Gather(t, a.Registry()).Sum("llmq_dispatcher_jobs_dispatched_total"); got != 1 {
		t.Fatalf("a: %g", got)
	}
	sb := metricstest.Gather(t, b.Registry())
	if sb.Has("llmq_dispatcher_jobs_dispatched_total") || sb.Has("other_dispatcher_jobs_dispatched_total") {
		t.Fatal("b sees a's count")
	}
	if !sb.Has("go_goroutines") {
		t.Fatal("runtime collectors missing")
	}
	def := metricstest.Gather(t, prometheus.DefaultGatherer)
	for name := range def {
		if strings.HasPrefix(name, "llmq_") {
			t.Fatalf("%s is in the global default registry", name)
		}
	}
}

func TestServer_ServesMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Config{})
	m.Worker().JobDone(worker.JobReport{Tier: "t", Deployment: "d", Outcome: worker.OutcomeOK})
	srv := metrics.NewServer(metrics.ServerConfig{Listen: "127.0.0.1:0", Metrics: m, Logger: quiet()})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	s := metricstest.Scrape(t, "http://"+srv.Addr()+"/metrics")
	if s.Sum("llmq_worker_jobs_total", "outcome", "ok") != 1 || !s.Has("process_cpu_seconds_total") {
		t.Fatalf("scrape: %v", s)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + srv.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	for range 2 {
		if err := srv.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := metrics.NewServer(metrics.ServerConfig{}).Stop(context.Background()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
}

// A real dispatcher and worker, observed: the counters add up to the jobs
// sent.
func TestWired_CountersAddUpToTheJobsSent(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{})
	subjects := brokertest.Subjects(t)
	m := metrics.New(metrics.Config{NoRuntime: true})
	d, err := dispatcher.New(dispatcher.Config{Conn: srv.Connect("d"), Subjects: subjects, Tiers: []string{"t1"},
		Observer: m.Dispatcher(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	m.AddDispatcher(d)
	p, _ := sim.New(sim.Config{Name: "s", Tokens: 4, TTFT: time.Millisecond})
	w, err := worker.New(worker.Config{Conn: srv.Connect("w"), Subjects: subjects, Tier: "t1", Deployment: "d1", Provider: p,
		Observer: m.Worker(), InputCostPerToken: 1e-6, OutputCostPerToken: 2e-6, Logger: quiet(), HeartbeatInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	m.AddWorker(w)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.WaitWorkers(ctx, "t1", 1); err != nil {
		t.Fatal(err)
	}

	c := client.New(srv.Connect("p"), client.Config{Subjects: subjects})
	const ok, unknown = 12, 3
	var prompt, completion int
	var cost float64
	for i := range ok {
		req := &schema.Request{Messages: []schema.Message{{Role: "user", Content: "count me"}}}
		var r *schema.Response
		if i%2 == 0 {
			r, err = c.Complete(ctx, "t1", req)
		} else {
			var s *client.Stream
			if s, err = c.Stream(ctx, "t1", req); err == nil {
				for ch, err2 := range s.All() {
					if err2 != nil {
						err = err2
						break
					}
					if ch.Routing != nil {
						r = &schema.Response{Usage: *ch.Usage, Routing: ch.Routing}
					}
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		prompt += r.Usage.PromptTokens
		completion += r.Usage.CompletionTokens
		cost += r.Routing.CostUSD
	}
	for range unknown {
		if _, err := c.Complete(ctx, "nope", &schema.Request{Messages: []schema.Message{{Role: "user", Content: "x"}}}); schema.CodeOf(err) != schema.CodeUnknownTier {
			t.Fatalf("err %v", err)
		}
	}
	// The worker counts a job after its reply is sent: poll until it has.
	var s metricstest.Samples
	deadline := time.Now().Add(wait)
	for {
		s = metricstest.Gather(t, m.Registry())
		if s.Sum("llmq_worker_jobs_total") == ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"llmq_dispatcher_jobs_received_total", nil, ok + unknown},
		{"llmq_dispatcher_jobs_dispatched_total", []string{"tier", "t1"}, ok},
		{"llmq_dispatcher_queue_wait_seconds_count", nil, ok},
		{"llmq_dispatcher_errors_total", []string{"tier", metrics.UnknownTier, "code", "unknown_tier"}, unknown},
		{"llmq_worker_jobs_total", []string{"tier", "t1", "deployment", "d1", "outcome", "ok"}, ok},
		{"llmq_worker_jobs_total", nil, ok},
		{"llmq_worker_call_duration_seconds_count", nil, ok},
		{"llmq_worker_ttft_seconds_count", nil, ok / 2},
		{"llmq_worker_input_tokens_total", nil, float64(prompt)},
		{"llmq_worker_output_tokens_total", nil, float64(completion)},
		{"llmq_worker_capacity_jobs", nil, 4}, // worker.Config default concurrency
		{"llmq_dispatcher_workers", []string{"state", "ready"}, 1},
	}
	for _, c := range checks {
		if got := s.Sum(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %g, want %g", c.name, c.labels, got, c.want)
		}
	}
	if got := s.Sum("llmq_worker_cost_usd_total"); math.Abs(got-cost) > 1e-12 || cost == 0 {
		t.Errorf("cost %g, replies say %g", got, cost)
	}
	if s.Sum("llmq_dispatcher_heartbeats_total", "tier", "t1") == 0 {
		t.Error("no heartbeat counted")
	}
}
