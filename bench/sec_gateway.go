package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/llmq/llmq/schema"
)

// GatewayResults are the gateway section's (issue 14): the cost of one
// chat completion over HTTP through llmq's gateway, against the same call
// made straight to a mock OpenAI upstream and through a bare reverse
// proxy.
type GatewayResults struct {
	// Topology says which processes ran.
	Topology string `json:"topology"`
	// Clients is the closed-loop concurrency of the peak runs; Rate the
	// fixed open-loop rate; Rounds how many slices each path's time in a
	// phase was cut into (the paths take turns slice by slice).
	Clients int `json:"clients"`
	Rate    int `json:"rate"`
	Rounds  int `json:"rounds"`
	// Paths: direct, proxy, llmq up, llmq processes.
	Paths []GatewayPath `json:"paths"`
	// Echo is a raw NATS request-reply at one client (the job's msgpack
	// bytes to a responder in its own process): one NATS round trip.
	Echo LoadResult `json:"echo"`
	// Profile is of llmq up --gateway assembled in a helper process (the
	// same packages, one in-process NATS connection) at Clients, while the
	// load generator ran ProfileRate requests a second at it.
	Profile        *CPUProfile `json:"profile,omitempty"`
	ProfileRate    float64     `json:"profile_rate"`
	ProfileMissing string      `json:"profile_missing,omitempty"`
	// Targets compare the results with the goals of issue 14.
	Targets []Target `json:"targets"`
	// Commit, Command and Date of the run, since the section can be
	// merged into a file another run wrote.
	Commit  string `json:"commit"`
	Command string `json:"command"`
	Date    string `json:"date"`
}

// GatewayPath is one way to the mock upstream.
type GatewayPath struct {
	Name string `json:"name"`
	// Processes are the processes of the hop, whose CPU counts as its
	// cost (none for direct).
	Processes []string `json:"processes"`
	// Peak is the closed loop at Clients; PeakCPU its CPU per call by
	// process; HopCPUUs the part of it the hop's processes took.
	Peak     LoadResult `json:"peak"`
	PeakCPU  CPUUse     `json:"peak_cpu"`
	HopCPUUs float64    `json:"hop_cpu_us"`
	// One is the closed loop at one client; Fixed the open loop at Rate.
	One   LoadResult `json:"one"`
	Fixed LoadResult `json:"fixed"`
	// AddedOne and AddedFixed are this path minus direct.
	AddedOne   Added `json:"added_one"`
	AddedFixed Added `json:"added_fixed"`
}

// Names of the gateway section's paths.
const (
	PathDirect    = "direct"
	PathProxy     = "proxy"
	PathLLMQUp    = "llmq up"
	PathLLMQProcs = "llmq processes"
)

const gatewayConfig = `model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: %s
      max_parallel_requests: 1024
    model_info: {id: bench-openai}
router_settings:
  routing_strategy: least-busy
  num_retries: 0
`

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitCall calls until a call succeeds, a process exits or a minute
// passes.
func (c *cluster) waitCall(ctx context.Context, name string, call Call) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		if err := c.check(); err != nil {
			return err
		}
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		last = call(cctx, 0)
		ccancel()
		if last == nil {
			return nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return errors.Join(fmt.Errorf("bench: %s not ready: %w", name, ctx.Err()), last)
}

func (r *runner) gateway(ctx context.Context) (*GatewayResults, error) {
	env := environment(r.o.Command)
	res := &GatewayResults{Clients: r.o.GatewayClients, Rate: r.o.GatewayRate, Rounds: r.o.Rounds,
		Commit: env.Commit, Command: env.Command, Date: env.Date,
		Topology: "separate processes on loopback TCP: the mock OpenAI upstream (Go, answers at once), a bare httputil.ReverseProxy, " +
			"`llmq up --gateway` (embedded NATS, dispatcher, worker with the openai adapter, gateway), and llmq as four processes " +
			"(NATS server, llmq gateway, llmq dispatcher, llmq worker), all started together; the load generator is this process " +
			"(Go net/http client, keep-alive)"}
	c, err := r.newCluster()
	if err != nil {
		return nil, err
	}
	defer c.close()
	_, mock, err := c.helper(helperSpec{Kind: "openai"})
	if err != nil {
		return nil, err
	}
	_, proxy, err := c.helper(helperSpec{Kind: "proxy", Target: mock.URL})
	if err != nil {
		return nil, err
	}
	if _, _, err := c.helper(helperSpec{Kind: "echo", Subject: "bench.echo"}); err != nil {
		return nil, err
	}
	cfgText := fmt.Sprintf(gatewayConfig, mock.URL)
	cfg, err := c.file("gateway.yaml", cfgText)
	if err != nil {
		return nil, err
	}
	gwAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	upAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if _, err := c.llmq("llmq dispatcher", "dispatcher", "-c", cfg, "--no-batch"); err != nil {
		return nil, err
	}
	if _, err := c.llmq("llmq worker", "worker", "-c", cfg, "--deployment", "bench-openai"); err != nil {
		return nil, err
	}
	if _, err := c.llmq("llmq gateway", "gateway", "-c", cfg, "--listen", gwAddr); err != nil {
		return nil, err
	}
	up, _, err := startProc("llmq up", r.o.LLMQ, []string{"up", "-c", cfg, "--listen", "127.0.0.1:-1", "--gateway", upAddr,
		"--no-batch", "--log-level", "warn", "--log-format", "json"}, nil, false, 0)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, up)
	prof, profReady, err := c.helper(helperSpec{Kind: "llmq", Config: cfgText})
	if err != nil {
		return nil, err
	}
	prof.name = "llmq in-process (profiled)"

	hc := newLoadClient(res.Clients)
	defer hc.CloseIdleConnections()
	paths := []struct {
		GatewayPath
		call Call
	}{
		{GatewayPath{Name: PathDirect}, chatCall(hc, mock.URL)},
		{GatewayPath{Name: PathProxy, Processes: []string{"proxy"}}, chatCall(hc, proxy.URL)},
		{GatewayPath{Name: PathLLMQUp, Processes: []string{"llmq up"}}, chatCall(hc, "http://"+upAddr+"/v1")},
		{GatewayPath{Name: PathLLMQProcs, Processes: []string{"nats", "llmq gateway", "llmq dispatcher", "llmq worker"}}, chatCall(hc, "http://"+gwAddr+"/v1")},
	}
	for _, p := range paths {
		if err := c.waitCall(ctx, p.Name, p.call); err != nil {
			return nil, err
		}
	}
	profCall := chatCall(hc, profReady.URL)
	if err := c.waitCall(ctx, "llmq in-process", profCall); err != nil {
		return nil, err
	}
	nc, err := c.connect("llmq-bench-producer")
	if err != nil {
		return nil, err
	}
	payload, err := schema.MsgPack.Marshal(benchRequest())
	if err != nil {
		return nil, err
	}
	echo := func(ctx context.Context, _ int) error {
		_, err := nc.RequestWithContext(ctx, "bench.echo", payload)
		return err
	}

	warm := min(r.o.GatewayDuration/4, time.Second)
	for _, p := range paths {
		ClosedLoop(ctx, res.Clients, warm, r.o.Timeout, p.call)
	}
	slice := r.o.GatewayDuration / time.Duration(r.o.Rounds)
	type phase struct {
		name string
		run  func(Call) LoadResult
	}
	phases := []phase{
		{"peak", func(call Call) LoadResult { return ClosedLoop(ctx, res.Clients, slice, r.o.Timeout, call) }},
		{"one", func(call Call) LoadResult { return ClosedLoop(ctx, 1, slice, r.o.Timeout, call) }},
		{"fixed", func(call Call) LoadResult {
			return OpenLoop(ctx, Fixed(float64(res.Rate), slice), r.o.Timeout, call)
		}},
	}
	var echoRounds []LoadResult
	for _, ph := range phases {
		rounds := make([][]LoadResult, len(paths))
		cpu := make([]CPUUse, len(paths))
		for range r.o.Rounds {
			for k, p := range paths {
				if ctx.Err() != nil {
					return res, errStopped
				}
				m := meter(c.pids())
				lr := ph.run(p.call)
				cpu[k] = addCPU(cpu[k], m.stop(lr.OK), r.o.Rounds)
				rounds[k] = append(rounds[k], lr)
				if err := c.check(); err != nil {
					return res, err
				}
			}
			if ph.name == "one" {
				echoRounds = append(echoRounds, ph.run(echo))
			}
		}
		for k := range paths {
			lr := Merge(rounds[k]...)
			p := &paths[k].GatewayPath
			r.log.Info("gateway", "phase", ph.name, "path", p.Name, "ok", lr.OK, "failed", lr.Failed, "rate", int(lr.Rate),
				"p50_us", int(lr.Latency.P50Us), "p99_us", int(lr.Latency.P99Us), "other_cpu_percent", int(cpu[k].OtherPercent))
			switch ph.name {
			case "peak":
				p.Peak, p.PeakCPU = lr, cpu[k]
				p.HopCPUUs = 0
				for _, name := range p.Processes {
					p.HopCPUUs += cpu[k].PerCallUs[name]
				}
			case "one":
				p.One = lr
			case "fixed":
				p.Fixed = lr
			}
		}
	}
	res.Echo = Merge(echoRounds...)
	direct := paths[0].GatewayPath
	for k := range paths {
		p := &paths[k].GatewayPath
		p.AddedOne = added(p.One, direct.One)
		p.AddedFixed = added(p.Fixed, direct.Fixed)
		res.Paths = append(res.Paths, *p)
	}
	r.gatewayProfile(ctx, res, profReady.Profiler, profCall)
	res.Targets = gatewayTargets(res)
	return res, c.check()
}

// added is a minus b at each percentile.
func added(a, b LoadResult) Added {
	return Added{P50Us: a.Latency.P50Us - b.Latency.P50Us, P99Us: a.Latency.P99Us - b.Latency.P99Us, P999Us: a.Latency.P999Us - b.Latency.P999Us}
}

// gatewayProfile profiles the in-process llmq helper under the peak load.
func (r *runner) gatewayProfile(ctx context.Context, res *GatewayResults, profiler string, call Call) {
	d := r.o.ProfileDuration
	lead := min(d/4, time.Second)
	done := make(chan LoadResult, 1)
	go func() { done <- ClosedLoop(ctx, res.Clients, lead+d+lead, r.o.Timeout, call) }()
	t := time.NewTimer(lead)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	data, err := fetchProfile(ctx, profiler, d)
	lr := <-done
	res.ProfileRate = lr.Rate
	if err != nil {
		res.ProfileMissing = "could not profile: " + err.Error()
		return
	}
	if r.o.GatewayProfile != "" {
		if err := os.WriteFile(r.o.GatewayProfile, data, 0o644); err != nil {
			r.log.Warn("gateway profile not written", "err", err)
		}
	}
	p, err := SummarizeProfile(data, 20)
	if err != nil {
		res.ProfileMissing = err.Error()
		return
	}
	res.Profile = &p
}

// gatewayTargets compares res with the goals of issue 14.
func gatewayTargets(res *GatewayResults) []Target {
	var direct, proxy, up *GatewayPath
	for i := range res.Paths {
		switch p := &res.Paths[i]; p.Name {
		case PathDirect:
			direct = p
		case PathProxy:
			proxy = p
		case PathLLMQUp:
			up = p
		}
	}
	if direct == nil || proxy == nil || up == nil {
		return nil
	}
	cpu := ratio(up.HopCPUUs, proxy.HopCPUUs)
	rate := ratio(up.Peak.Rate, proxy.Peak.Rate)
	bar := proxy.AddedOne.P50Us + res.Echo.Latency.P50Us
	return []Target{
		{
			Name:     fmt.Sprintf("CPU per request, llmq up --gateway, %d clients", res.Clients),
			Bar:      "≤ 0.8× a bare reverse proxy's",
			Measured: fmt.Sprintf("%.0f µs vs %.0f µs: %.2f×", up.HopCPUUs, proxy.HopCPUUs, cpu),
			Met:      up.Peak.OK > 0 && cpu <= 0.8,
		},
		{
			Name:     fmt.Sprintf("peak rate, llmq up --gateway, %d clients", res.Clients),
			Bar:      "≥ 1.2× the bare proxy's",
			Measured: fmt.Sprintf("%.0f/s vs %.0f/s: %.2f×", up.Peak.Rate, proxy.Peak.Rate, rate),
			Met:      rate >= 1.2,
		},
		{
			Name: "added latency p50, llmq up --gateway, 1 client",
			Bar:  "≤ the bare proxy's + one NATS round trip",
			Measured: fmt.Sprintf("%s vs %s (proxy %s + echo %s)", fmtUs(up.AddedOne.P50Us), fmtUs(bar),
				fmtUs(proxy.AddedOne.P50Us), fmtUs(res.Echo.Latency.P50Us)),
			Met: up.One.OK > 0 && up.AddedOne.P50Us <= bar,
		},
	}
}
