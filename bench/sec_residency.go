package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// SectionResidency is the GPU hosts section: model residency on a fleet of
// Ollama hosts that hold one model at a time.
const SectionResidency = "residency"

// The GPU hosts fleet: 3 hosts, each with the two tiers' models and room
// for one, a load of ResidencyLoadTime, 4 parallel slots per model, and a
// reply of 10 tokens at 20 ms a token.
const (
	hostsCount    = 3
	hostsSlots    = 4
	hostsCoder    = "qwen2.5-coder:14b"
	hostsChat     = "llama3.1:8b"
	hostsReply    = "one two three four five six seven eight nine ten"
	hostsPerToken = 20 * time.Millisecond
	// ResidencyLoadTime is what loading a model costs a fake host.
	ResidencyLoadTime = 1500 * time.Millisecond
	// Closed-loop producers per tier: coder has twice chat's demand, so
	// the best static split is coder on two hosts and chat on one.
	hostsCoderProducers = 8
	hostsChatProducers  = 4
)

// Layout names of the GPU hosts section.
const (
	LayoutBlind     = "per-(host, model) workers, blind (LiteLLM)"
	LayoutResidency = "per-(host, model) workers, residency"
	LayoutPerHost   = "per-host workers, residency"
	LayoutHand      = "hand-partitioned (coder on 2 hosts, chat on 1)"
)

// ResidencyResults are the GPU hosts section's.
type ResidencyResults struct {
	Hosts      int     `json:"hosts"`
	Slots      int     `json:"slots"`
	LoadMs     float64 `json:"load_ms"`
	ServiceMs  float64 `json:"service_ms"`
	Producers  string  `json:"producers"`
	Seconds    float64 `json:"seconds"`
	Runs       []ResidencyRun
	MinLoads   int    `json:"min_loads"`
	Strategy   string `json:"strategy"`
	ConfigNote string `json:"config_note"`
}

// ResidencyRun is one layout's run.
type ResidencyRun struct {
	Layout string         `json:"layout"`
	OK     int            `json:"ok"`
	Failed int            `json:"failed"`
	Errors map[string]int `json:"errors,omitempty"`
	// TurnsPerSecond is the completed jobs over the run's time.
	TurnsPerSecond float64 `json:"turns_per_second"`
	Latency        Summary `json:"latency"`
	// Loads and Unloads count the models the hosts loaded and evicted.
	Loads   int `json:"loads"`
	Unloads int `json:"unloads"`
	// Resident is what each host held at the end.
	Resident []string `json:"resident"`
}

// residencyWorker is one worker of a layout: its tier and model on host i;
// shared puts it under its host's slot budget (a per-host worker).
type residencyWorker struct {
	tier, model string
	host        int
	shared      bool
}

// residencyLayouts returns the layouts to compare, each with its workers and
// whether residency is off.
func residencyLayouts() []struct {
	name    string
	blind   bool
	workers []residencyWorker
} {
	var perModel, perHost []residencyWorker
	for h := range hostsCount {
		for _, tm := range [][2]string{{"coder", hostsCoder}, {"chat", hostsChat}} {
			perModel = append(perModel, residencyWorker{tier: tm[0], model: tm[1], host: h})
			perHost = append(perHost, residencyWorker{tier: tm[0], model: tm[1], host: h, shared: true})
		}
	}
	hand := []residencyWorker{{"coder", hostsCoder, 0, false}, {"coder", hostsCoder, 1, false}, {"chat", hostsChat, 2, false}}
	return []struct {
		name    string
		blind   bool
		workers []residencyWorker
	}{
		{LayoutBlind, true, perModel},
		{LayoutResidency, false, perModel},
		{LayoutPerHost, false, perHost},
		{LayoutHand, false, hand},
	}
}

func (r *runner) residency(ctx context.Context) (*ResidencyResults, error) {
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	res := &ResidencyResults{Hosts: hostsCount, Slots: hostsSlots, LoadMs: float64(ResidencyLoadTime.Milliseconds()),
		ServiceMs: float64((10 * hostsPerToken).Milliseconds()), Seconds: r.o.ResidencyDuration.Seconds(),
		Producers: fmt.Sprintf("%d coder + %d chat, closed loop", hostsCoderProducers, hostsChatProducers),
		MinLoads:  hostsCount, Strategy: "simple-shuffle (LiteLLM's default)"}
	for i, l := range residencyLayouts() {
		if ctx.Err() != nil {
			return res, errStopped
		}
		run, err := r.residencyOnce(ctx, srv.ClientURL(), fmt.Sprintf("h%d", i), l.name, l.blind, l.workers)
		if err != nil {
			return res, fmt.Errorf("%s: %w", l.name, err)
		}
		r.log.Info("hosts", "layout", l.name, "turns_per_s", fmt.Sprintf("%.1f", run.TurnsPerSecond),
			"p50_ms", int(run.Latency.P50Us/1000), "loads", run.Loads, "failed", run.Failed)
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}

// residencyOnce runs one layout on fresh hosts: workers, one dispatcher,
// closed-loop producers on both tiers for ResidencyDuration.
func (r *runner) residencyOnce(ctx context.Context, url, prefix, layout string, blind bool, ws []residencyWorker) (ResidencyRun, error) {
	run := ResidencyRun{Layout: layout}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	subjects := broker.Subjects{Prefix: prefix}
	var conns []*nats.Conn
	var hosts []*ollamatest.Server
	var workers []*worker.Worker
	var disp *dispatcher.Dispatcher
	hc := provider.NewHTTPClient()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if disp != nil {
			_ = disp.Stop(sctx)
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
	budgets := make([]*worker.HostBudget, hostsCount)
	for i := range hostsCount {
		hosts = append(hosts, ollamatest.Start(ollamatest.Config{Models: []string{hostsCoder, hostsChat}, MaxLoaded: 1,
			LoadTime: ResidencyLoadTime, Parallel: hostsSlots, Delay: hostsPerToken, Reply: hostsReply}))
		b, err := worker.NewHostBudget(hostsSlots)
		if err != nil {
			return run, err
		}
		budgets[i] = b
	}
	for i, spec := range ws {
		p, err := ollama.New(provider.Options{Model: spec.model, APIBase: hosts[spec.host].URL(), HTTP: hc})
		if err != nil {
			return run, err
		}
		nc, err := connect(fmt.Sprintf("worker-%d", i))
		if err != nil {
			return run, err
		}
		wc := worker.Config{Conn: nc, Subjects: subjects, Tier: spec.tier, Deployment: fmt.Sprintf("%s-gpu%d", spec.tier, spec.host+1),
			Provider: p, ProviderName: worker.ProviderOllama, Model: spec.model, Host: p.Host(), Concurrency: hostsSlots, Logger: quiet}
		if spec.shared {
			wc.HostBudget = budgets[spec.host]
		}
		w, err := worker.New(wc)
		if err != nil {
			return run, err
		}
		if err := w.Start(ctx); err != nil {
			return run, err
		}
		workers = append(workers, w)
	}
	nc, err := connect("dispatcher")
	if err != nil {
		return run, err
	}
	disp, err = dispatcher.New(dispatcher.Config{Conn: nc, Subjects: subjects, Tiers: []string{"coder", "chat"},
		Policy: dispatcher.Policy{NumRetries: 2}, NoResidency: blind, Seed: r.o.Seed, Logger: quiet})
	if err != nil {
		return run, err
	}
	if err := disp.Start(ctx); err != nil {
		return run, err
	}
	for _, tier := range []string{"coder", "chat"} {
		n := 0
		for _, w := range ws {
			if w.tier == tier {
				n++
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := disp.WaitWorkers(wctx, tier, n)
		cancel()
		if err != nil {
			return run, err
		}
	}
	pnc, err := connect("producer")
	if err != nil {
		return run, err
	}
	cl := client.New(pnc, client.Config{Subjects: subjects, Timeout: r.o.Timeout, NoResponderRetries: -1})
	var wg sync.WaitGroup
	results := make([]LoadResult, 2)
	for i, tl := range []struct {
		tier string
		n    int
	}{{"coder", hostsCoderProducers}, {"chat", hostsChatProducers}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = ClosedLoop(ctx, tl.n, r.o.ResidencyDuration, r.o.Timeout, func(ctx context.Context, k int) error {
				req := schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(fmt.Sprintf("turn %d", k))}}}
				_, err := cl.Complete(ctx, tl.tier, &req)
				return err
			})
		}()
	}
	wg.Wait()
	all := Merge(results...)
	run.OK, run.Failed, run.Errors, run.Latency = all.OK, all.Failed, all.Errors, all.Latency
	secs := max(results[0].Seconds, results[1].Seconds)
	if secs > 0 {
		run.TurnsPerSecond = float64(run.OK) / secs
	}
	for i, h := range hosts {
		st := h.Stats()
		run.Loads += st.Loads
		run.Unloads += st.Unloads
		run.Resident = append(run.Resident, fmt.Sprintf("gpu%d: %s", i+1, strings.Join(h.Loaded(), ", ")))
	}
	return run, nil
}

// residencyTargets compares the per-host layout with the hand-partitioned one
// (issue 13, requirement 2).
func residencyTargets(h *ResidencyResults) []Target {
	if h == nil {
		return nil
	}
	var hand, best *ResidencyRun
	for i := range h.Runs {
		switch h.Runs[i].Layout {
		case LayoutHand:
			hand = &h.Runs[i]
		case LayoutPerHost:
			best = &h.Runs[i]
		}
	}
	if hand == nil || best == nil || hand.TurnsPerSecond <= 0 {
		return nil
	}
	ratio := best.TurnsPerSecond / hand.TurnsPerSecond
	return []Target{
		{
			Name:     "GPU hosts: per-host workers' throughput, plain config",
			Bar:      "≥ 0.9× hand-partitioned",
			Measured: fmt.Sprintf("%.1f turns/s, %.2f× the hand-partitioned %.1f", best.TurnsPerSecond, ratio, hand.TurnsPerSecond),
			Met:      ratio >= 0.9,
		},
		{
			Name:     "GPU hosts: model loads, plain config",
			Bar:      fmt.Sprintf("≤ 2× the minimum (%d)", h.MinLoads),
			Measured: fmt.Sprintf("%d loads", best.Loads),
			Met:      best.Loads <= 2*h.MinLoads,
		},
	}
}

// markdown writes the section.
func (h *ResidencyResults) markdown(p func(string, ...any)) {
	p("## 7. GPU hosts: model residency (issue 13)\n\n")
	p("%d fake Ollama hosts (ollamatest's host model, real HTTP), each with two models — tier `coder` = %s, tier `chat` = %s — ", h.Hosts, hostsCoder, hostsChat)
	p("and room for one loaded at a time: a cold call waits %.1f s for the load, and loading one model evicts the other once its calls end ", h.LoadMs/1000)
	p("(Ollama's scheduler, one FIFO per host). %d parallel slots per model; a reply is 10 tokens at 20 ms (%.0f ms a job). ", h.Slots, h.ServiceMs)
	p("Load: %s, for %.0f s per layout; one dispatcher, %s; everything in one process on loopback. ", h.Producers, h.Seconds, h.Strategy)
	p("The plain config lists every (host, model) as a deployment, as a LiteLLM user would. The minimum is %d loads (one per host).\n\n", h.MinLoads)
	p("| layout | turns/s | p50 | p99 | ok | failed | model loads | held at the end |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range h.Runs {
		p("| %s | %.1f | %s | %s | %d | %s | %d | %s |\n", r.Layout, r.TurnsPerSecond, fmtMs(r.Latency.P50Us), fmtMs(r.Latency.P99Us),
			r.OK, errorsOf(r.Errors), r.Loads, strings.Join(r.Resident, "; "))
	}
	p("\n")
}
