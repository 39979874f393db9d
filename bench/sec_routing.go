package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
)

// Oracle names, as RoutingRun.Router.
const (
	OracleJSQ = "oracle: JSQ"
	OracleECT = "oracle: ECT"
)

// DefaultFleet is the routing section's fleet: four Ollama hosts of
// different slots and speeds, each queueing at most 4 chats (a small
// OLLAMA_MAX_QUEUE, so a router that piles jobs on one host meets 503s).
func DefaultFleet() []HostSpec {
	return []HostSpec{
		{Name: "gpu-a", Parallel: 4, MaxQueue: 4, TTFT: 4 * time.Millisecond, TokensPerSecond: 2000},
		{Name: "gpu-b", Parallel: 2, MaxQueue: 4, TTFT: 6 * time.Millisecond, TokensPerSecond: 1000},
		{Name: "gpu-c", Parallel: 2, MaxQueue: 4, TTFT: 10 * time.Millisecond, TokensPerSecond: 500},
		{Name: "cpu-d", Parallel: 1, MaxQueue: 4, TTFT: 20 * time.Millisecond, TokensPerSecond: 250},
	}
}

// RoutingResults are the routing section's.
type RoutingResults struct {
	Hosts []HostSpec `json:"hosts"`
	// MeanTokens is the mean output length of the jobs; Capacity the
	// fleet's jobs a second at it, every slot busy.
	MeanTokens float64      `json:"mean_tokens"`
	Capacity   float64      `json:"capacity"`
	Seconds    float64      `json:"seconds"`
	Runs       []RoutingRun `json:"runs"`
}

// RoutingRun is one router at one load.
type RoutingRun struct {
	// Router is a strategy, or OracleJSQ / OracleECT.
	Router string `json:"router"`
	// Dispatchers sharing the load; 0 for an oracle.
	Dispatchers int     `json:"dispatchers"`
	Load        float64 `json:"load"`
	// Rate is the offered load, jobs a second.
	Rate   float64        `json:"rate"`
	Jobs   int            `json:"jobs"`
	OK     int            `json:"ok"`
	Failed int            `json:"failed"`
	Errors map[string]int `json:"errors,omitempty"`
	// Latency of completed jobs, from the producer's send to its reply
	// (for an oracle, from arrival to the last token).
	Latency Summary `json:"latency"`
	// Share is each host's part of the completed jobs; Busy counts the
	// 503s hosts answered; Retries the attempts dispatchers made again.
	Share   map[string]float64 `json:"share"`
	Busy    int64              `json:"busy"`
	Retries uint64             `json:"retries"`
	// LateUs is the mean time hosts took beyond the nominal service time;
	// oracles add the mean of the llmq runs at the same load.
	LateUs float64 `json:"late_us"`
	// Utilization is the share of the fleet's slot time that chats held
	// while the run lasted (0 for an oracle).
	Utilization float64 `json:"utilization"`
}

// workload is the jobs of one load: Poisson arrivals, exponential lengths
// from 1 to 4× the mean.
func workload(rate float64, d time.Duration, meanTokens int, seed uint64) []SimJob {
	at := Poisson(rate, d, seed)
	rng := rand.New(rand.NewPCG(seed, 0x70c))
	jobs := make([]SimJob, len(at))
	for i, t := range at {
		jobs[i] = SimJob{At: t, Tokens: tokensOf(rng, meanTokens)}
	}
	return jobs
}

func tokensOf(rng *rand.Rand, mean int) int {
	return max(1, min(4*mean, int(math.Round(rng.ExpFloat64()*float64(mean)))))
}

// meanTokensOf is the mean of the length distribution, from a large
// sample.
func meanTokensOf(meanTokens int, seed uint64) float64 {
	rng := rand.New(rand.NewPCG(seed, 0x3ea))
	const n = 200000
	sum := 0
	for range n {
		sum += tokensOf(rng, meanTokens)
	}
	return float64(sum) / n
}

func (r *runner) routing(ctx context.Context) (*RoutingResults, error) {
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	mean := meanTokensOf(r.o.MeanTokens, r.o.Seed)
	res := &RoutingResults{Hosts: r.o.Hosts, MeanTokens: mean, Seconds: r.o.RoutingDuration.Seconds()}
	for _, h := range r.o.Hosts {
		res.Capacity += h.Capacity(mean)
	}
	run := 0
	for li, load := range r.o.Loads {
		rate := load * res.Capacity
		jobs := workload(rate, r.o.RoutingDuration, r.o.MeanTokens, r.o.Seed+uint64(li))
		var lateSum float64
		var lateN int64
		for _, n := range r.o.Dispatchers {
			for _, strategy := range r.o.Strategies {
				if ctx.Err() != nil {
					return res, errStopped
				}
				run++
				rr, served, err := r.routeOnce(ctx, srv.ClientURL(), fmt.Sprintf("r%d", run), strategy, n, jobs)
				if err != nil {
					return res, err
				}
				rr.Load, rr.Rate = load, rate
				lateSum += rr.LateUs * float64(served)
				lateN += served
				r.log.Info("routing", "load", load, "strategy", strategy, "dispatchers", n, "ok", rr.OK, "failed", rr.Failed,
					"p50_ms", int(rr.Latency.P50Us/1000), "p99_ms", int(rr.Latency.P99Us/1000), "busy", rr.Busy)
				res.Runs = append(res.Runs, rr)
			}
		}
		late := 0.0
		if lateN > 0 {
			late = lateSum / float64(lateN)
		}
		extra := time.Duration(late * 1e3)
		res.Runs = append(res.Runs,
			oracleRun(OracleJSQ, SimulateJSQ(r.o.Hosts, jobs, mean, extra), r.o.Hosts, load, rate, late),
			oracleRun(OracleECT, SimulateECT(r.o.Hosts, jobs, extra), r.o.Hosts, load, rate, late))
	}
	return res, nil
}

func oracleRun(name string, o SimOutcome, hosts []HostSpec, load, rate, late float64) RoutingRun {
	rr := RoutingRun{Router: name, Load: load, Rate: rate, Jobs: len(o.Host), Share: map[string]float64{}, LateUs: late}
	var lat []time.Duration
	for i, h := range o.Host {
		if h < 0 {
			rr.Failed++
			rr.Busy++
			continue
		}
		rr.OK++
		rr.Share[hosts[h].Name]++
		lat = append(lat, o.Latency[i])
	}
	if rr.Failed > 0 {
		rr.Errors = map[string]int{"rejected": rr.Failed}
	}
	for k := range rr.Share {
		rr.Share[k] /= float64(rr.OK)
	}
	rr.Latency = Summarize(lat)
	return rr
}

// routeOnce runs jobs through a fresh fleet: hosts, one worker per host
// (concurrency = the host's slots, as the README says to run it) and
// dispatchers dispatchers, all in this process on their own loopback TCP
// connections under a subject prefix of their own. It returns the run
// and how many chats the hosts served.
func (r *runner) routeOnce(ctx context.Context, url, prefix, strategy string, dispatchers int, jobs []SimJob) (RoutingRun, int64, error) {
	rr := RoutingRun{Router: strategy, Dispatchers: dispatchers, Jobs: len(jobs), Share: map[string]float64{}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	subjects := broker.Subjects{Prefix: prefix}
	var conns []*nats.Conn
	var hosts []*OllamaHost
	var workers []*worker.Worker
	var disps []*dispatcher.Dispatcher
	hc := provider.NewHTTPClient()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, d := range disps {
			_ = d.Stop(sctx)
		}
		for _, w := range workers {
			_ = w.Stop(sctx)
		}
		for _, nc := range conns {
			nc.Close()
		}
		hc.CloseIdleConnections()
		for _, h := range hosts {
			h.Close()
		}
	}()
	connect := func(name string) (*nats.Conn, error) {
		nc, err := nats.Connect(url, nats.Name(name))
		if err == nil {
			conns = append(conns, nc)
		}
		return nc, err
	}
	for _, spec := range r.o.Hosts {
		h, err := StartOllama(spec)
		if err != nil {
			return rr, 0, err
		}
		hosts = append(hosts, h)
		p, err := ollama.New(provider.Options{Model: "bench", APIBase: h.URL(), HTTP: hc})
		if err != nil {
			return rr, 0, err
		}
		nc, err := connect("worker-" + spec.Name)
		if err != nil {
			return rr, 0, err
		}
		w, err := worker.New(worker.Config{Conn: nc, Subjects: subjects, Tier: "fleet", Deployment: spec.Name, Provider: p,
			ProviderName: worker.ProviderOllama, Model: "bench", Host: h.URL(), Concurrency: spec.Parallel, Logger: quiet})
		if err != nil {
			return rr, 0, err
		}
		if err := w.Start(ctx); err != nil {
			return rr, 0, err
		}
		workers = append(workers, w)
	}
	for i := range dispatchers {
		nc, err := connect(fmt.Sprintf("dispatcher-%d", i))
		if err != nil {
			return rr, 0, err
		}
		d, err := dispatcher.New(dispatcher.Config{Conn: nc, Subjects: subjects, Strategy: strategy, Tiers: []string{"fleet"},
			Policy: dispatcher.Policy{NumRetries: 2}, Seed: r.o.Seed + uint64(i), Logger: quiet})
		if err != nil {
			return rr, 0, err
		}
		if err := d.Start(ctx); err != nil {
			return rr, 0, err
		}
		disps = append(disps, d)
	}
	for _, d := range disps {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.WaitWorkers(wctx, "fleet", len(workers))
		cancel()
		if err != nil {
			return rr, 0, err
		}
	}
	pnc, err := connect("producer")
	if err != nil {
		return rr, 0, err
	}
	cl := client.New(pnc, client.Config{Subjects: subjects, Timeout: r.o.Timeout, NoResponderRetries: -1})
	reqs := make([]schema.Request, len(jobs))
	tokens := make([]int, len(jobs))
	schedule := make([]time.Duration, len(jobs))
	for i, j := range jobs {
		tokens[i] = j.Tokens
		reqs[i] = schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "route me"}}, MaxTokens: &tokens[i]}
		schedule[i] = j.At
	}
	where := make([]string, len(jobs))
	lr := OpenLoop(ctx, schedule, r.o.Timeout, func(ctx context.Context, i int) error {
		resp, err := cl.Complete(ctx, "fleet", &reqs[i])
		if err == nil && resp.Routing != nil {
			where[i] = resp.Routing.Deployment
		}
		return err
	})
	rr.OK, rr.Failed, rr.Errors, rr.Latency = lr.OK, lr.Failed, lr.Errors, lr.Latency
	for _, w := range where {
		if w != "" {
			rr.Share[w]++
		}
	}
	for k := range rr.Share {
		rr.Share[k] /= float64(max(1, rr.OK))
	}
	var served int64
	var late, busy float64
	slots := 0
	for _, h := range hosts {
		st := h.Stats()
		rr.Busy += st.Busy
		served += st.Served
		late += st.LateUs * float64(st.Served)
		busy += st.BusySeconds
		slots += h.Spec().Parallel
	}
	if lr.Seconds > 0 && slots > 0 {
		rr.Utilization = busy / (float64(slots) * lr.Seconds)
	}
	if served > 0 {
		rr.LateUs = late / float64(served)
	}
	for _, d := range disps {
		rr.Retries += d.Stats().Retries
	}
	return rr, served, nil
}
