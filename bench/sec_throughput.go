package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

// ThroughputResults are the throughput section's: closed-loop completions
// a second at rising concurrency with an instant simulated provider,
// against the raw NATS echo, in two topologies, and a CPU profile.
type ThroughputResults struct {
	// Processes: llmq dispatcher and worker as separate processes, NATS in
	// its own. InProcess: NATS server, dispatcher, worker and producer in
	// the bench's process, still talking over loopback TCP, so one CPU
	// profile sees every part.
	Processes Ceiling `json:"processes"`
	InProcess Ceiling `json:"in_process"`
	// Profile is of the in-process topology at its best llmq level.
	Profile        *CPUProfile `json:"profile,omitempty"`
	ProfileLevel   int         `json:"profile_level"`
	ProfileRate    float64     `json:"profile_rate"`
	ProfileMissing string      `json:"profile_missing,omitempty"`
}

// Ceiling is one topology's steps.
type Ceiling struct {
	Topology string        `json:"topology"`
	Steps    []CeilingStep `json:"steps"`
	// BestEcho and BestLLMQ are the highest rates of any step.
	BestEcho float64 `json:"best_echo"`
	BestLLMQ float64 `json:"best_llmq"`
}

// CeilingStep is one concurrency level.
type CeilingStep struct {
	Concurrency int        `json:"concurrency"`
	Echo        LoadResult `json:"echo"`
	LLMQ        LoadResult `json:"llmq"`
}

const throughputConfig = `model_list:
  - model_name: bench
    litellm_params:
      model: sim/instant
      max_parallel_requests: %d
      sim: {parallel: %d, tokens: 16}
    model_info: {id: bench-sim}
router_settings:
  routing_strategy: least-busy
  num_retries: 0
`

// workerSlots is the throughput worker's concurrency: well above the
// highest level, so that slots never bind. (A dispatcher counts a job as
// in flight until the worker's next beat says otherwise, and beats come at
// most every 2 ms: a worker whose slots all turn over faster than that
// waits for beats, which is not what this section measures.)
func (r *runner) workerSlots() int {
	m := 1
	for _, c := range r.o.Concurrency {
		m = max(m, c)
	}
	return max(1024, 4*m)
}

func (r *runner) throughput(ctx context.Context) (*ThroughputResults, error) {
	res := &ThroughputResults{}
	var err error
	if res.Processes, err = r.ceilingProcesses(ctx); err != nil {
		return res, err
	}
	err = r.ceilingInProcess(ctx, res)
	return res, err
}

// climb runs the levels, echo then llmq at each, until llmq stops rising:
// two levels in a row that add less than 5% to the best.
func (r *runner) climb(ctx context.Context, topology string, echo, job Call) (Ceiling, error) {
	c := Ceiling{Topology: topology}
	flat := 0
	for _, n := range r.o.Concurrency {
		if ctx.Err() != nil {
			return c, errStopped
		}
		warm := min(r.o.StepDuration/4, 500*time.Millisecond)
		ClosedLoop(ctx, n, warm, r.o.Timeout, echo)
		e := ClosedLoop(ctx, n, r.o.StepDuration, r.o.Timeout, echo)
		ClosedLoop(ctx, n, warm, r.o.Timeout, job)
		l := ClosedLoop(ctx, n, r.o.StepDuration, r.o.Timeout, job)
		r.log.Info("throughput", "topology", topology[:min(len(topology), 12)], "concurrency", n, "echo_per_s", int(e.Rate), "llmq_per_s", int(l.Rate), "llmq_failed", l.Failed)
		c.Steps = append(c.Steps, CeilingStep{Concurrency: n, Echo: e, LLMQ: l})
		c.BestEcho = max(c.BestEcho, e.Rate)
		if l.Rate > c.BestLLMQ*1.05 {
			flat = 0
		} else {
			flat++
		}
		c.BestLLMQ = max(c.BestLLMQ, l.Rate)
		if flat >= 2 {
			break
		}
	}
	return c, nil
}

func (r *runner) ceilingProcesses(ctx context.Context) (Ceiling, error) {
	c, err := r.newCluster()
	if err != nil {
		return Ceiling{}, err
	}
	defer c.close()
	if _, _, err := c.helper(helperSpec{Kind: "echo", Subject: "bench.echo"}); err != nil {
		return Ceiling{}, err
	}
	n := r.workerSlots()
	cfg, err := c.file("throughput.yaml", fmt.Sprintf(throughputConfig, n, n))
	if err != nil {
		return Ceiling{}, err
	}
	if _, err := c.llmq("llmq dispatcher", "dispatcher", "-c", cfg); err != nil {
		return Ceiling{}, err
	}
	if _, err := c.llmq("llmq worker", "worker", "-c", cfg, "--deployment", "bench-sim"); err != nil {
		return Ceiling{}, err
	}
	nc, err := c.connect("llmq-bench-producer")
	if err != nil {
		return Ceiling{}, err
	}
	cl := client.New(nc, client.Config{Timeout: r.o.Timeout, NoResponderRetries: -1})
	req := benchRequest()
	if err := c.waitReady(ctx, cl, "bench", req); err != nil {
		return Ceiling{}, err
	}
	echo, job := calls(nc, cl, req)
	ceil, err := r.climb(ctx, "separate processes: NATS server, llmq dispatcher, llmq worker (sim provider), echo responder, load generator; loopback TCP", echo, job)
	if err == nil {
		err = c.check()
	}
	return ceil, err
}

// calls are the echo and the llmq job of a throughput step.
func calls(nc *nats.Conn, cl *client.Client, req *schema.Request) (echo, job Call) {
	payload, _ := schema.MsgPack.Marshal(req)
	echo = func(ctx context.Context, _ int) error {
		_, err := nc.RequestWithContext(ctx, "bench.echo", payload)
		return err
	}
	job = func(ctx context.Context, _ int) error {
		_, err := cl.Complete(ctx, "bench", req)
		return err
	}
	return echo, job
}

// ceilingInProcess climbs with every part in this process, then profiles
// the best level.
func (r *runner) ceilingInProcess(ctx context.Context, res *ThroughputResults) error {
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	connect := func(name string) (*nats.Conn, error) {
		nc, err := nats.Connect(srv.ClientURL(), nats.Name(name))
		if err == nil {
			conns = append(conns, nc)
		}
		return nc, err
	}
	dnc, err := connect("dispatcher")
	if err != nil {
		return err
	}
	wnc, err := connect("worker")
	if err != nil {
		return err
	}
	enc, err := connect("echo")
	if err != nil {
		return err
	}
	pnc, err := connect("producer")
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	subjects := broker.Subjects{}
	d, err := dispatcher.New(dispatcher.Config{Conn: dnc, Subjects: subjects, Strategy: config.LeastBusy, Tiers: []string{"bench"}, Logger: quiet, Seed: r.o.Seed})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = d.Stop(context.Background()) }()
	n := r.workerSlots()
	s, err := sim.New(sim.Config{Name: "instant", Parallel: n, Tokens: 16})
	if err != nil {
		return err
	}
	w, err := worker.New(worker.Config{Conn: wnc, Subjects: subjects, Tier: "bench", Deployment: "bench-sim", Provider: s,
		ProviderName: worker.ProviderSim, Model: "instant", Concurrency: n, Logger: quiet})
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = w.Stop(sctx)
	}()
	if _, err := Echo(enc, "bench.echo"); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = d.WaitWorkers(wctx, "bench", 1)
	cancel()
	if err != nil {
		return err
	}
	cl := client.New(pnc, client.Config{Timeout: r.o.Timeout, NoResponderRetries: -1})
	echo, job := calls(pnc, cl, benchRequest())
	res.InProcess, err = r.climb(ctx, "one process: embedded NATS server, dispatcher, worker (sim provider), echo responder, load generator; each on its own loopback TCP connection", echo, job)
	if err != nil {
		return err
	}
	best := res.InProcess.Steps[0]
	for _, s := range res.InProcess.Steps {
		if s.LLMQ.Rate > best.LLMQ.Rate {
			best = s
		}
	}
	res.ProfileLevel = best.Concurrency
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		res.ProfileMissing = "could not profile: " + err.Error()
		return nil
	}
	lr := ClosedLoop(ctx, best.Concurrency, r.o.ProfileDuration, r.o.Timeout, job)
	pprof.StopCPUProfile()
	res.ProfileRate = lr.Rate
	p, err := SummarizeProfile(buf.Bytes(), 15)
	if err != nil {
		res.ProfileMissing = err.Error()
		return nil
	}
	res.Profile = &p
	return nil
}
