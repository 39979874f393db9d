package bench

import (
	"context"
	"errors"
	"fmt"
	"github.com/llmq/llmq/broker"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmq/llmq/config"
)

// Sections of a run, in the order they run.
const (
	SectionLatency    = "latency"
	SectionThroughput = "throughput"
	SectionRouting    = "routing"
	SectionHosts      = "hosts"
	SectionMemory     = "memory"
	SectionGateway    = "gateway"
)

// allSections lists every section, in order.
func allSections() []string {
	return []string{SectionLatency, SectionThroughput, SectionRouting, SectionMemory, SectionGateway, SectionHosts, SectionResidency}
}

// Options shape a run. The zero value is the full run (about six minutes
// on two cores); every field has a default.
type Options struct {
	// LLMQ is the llmq binary that the latency, throughput and memory
	// sections run as separate processes. Default "bin/llmq".
	LLMQ string
	// Sections to run: latency, throughput, routing, memory, gateway.
	// Default all.
	Sections []string
	// Rates are the latency section's offered loads, requests a second.
	// Default 1000 and 5000.
	Rates []int
	// RateDuration is how long each path runs at each rate. Default 8 s.
	RateDuration time.Duration
	// Rounds cuts RateDuration into slices the paths take turns at.
	// Default 4.
	Rounds int
	// Concurrency are the throughput section's levels; it stops early once
	// two levels in a row add less than 5%. Default 1, 4, 16, 64, 256, 1024.
	Concurrency []int
	// StepDuration is how long each level runs. Default 2 s.
	StepDuration time.Duration
	// ProfileDuration is how long the CPU profile runs. Default 4 s.
	ProfileDuration time.Duration
	// Loads are the routing section's offered loads, as shares of the
	// fleet's capacity. Default 0.5, 0.8 and 0.95.
	Loads []float64
	// Strategies the routing section compares. Default config.Strategies.
	Strategies []string
	// Dispatchers are the dispatcher counts the routing section runs each
	// strategy with. Default 1 and 2.
	Dispatchers []int
	// RoutingDuration is how long each routing run offers load. Default 6 s.
	RoutingDuration time.Duration
	// Hosts is the routing section's fleet. Default DefaultFleet().
	Hosts []HostSpec
	// MeanTokens is the mean output length of routing jobs (exponential,
	// 1 to 4× the mean). Default 24.
	MeanTokens int
	// HostsProducers are the closed-loop producers the hosts section runs
	// the speed fleet with. Default 8 and 16.
	HostsProducers []int
	// HostsStrategies the hosts section compares on the speed fleet (with
	// each of Dispatchers). Default simple-shuffle, least-busy,
	// latency-based, shortest-expected-delay.
	HostsStrategies []string
	// HostsDuration is how long each hosts run measures, after
	// HostsWarmUp of the same load. Default 6 s and 1 s.
	HostsDuration, HostsWarmUp time.Duration
	// HostsParts are the parts of the hosts section to run: speed (the
	// strategies and the static splits), affinity; strategies is speed
	// without the static splits. Default speed and affinity.
	HostsParts []string
	// CacheProducers are the conversations held at once on the cache
	// fleet, each of CacheTurns turns. Default 12 and 6.
	CacheProducers, CacheTurns int
	// ResidencyDuration is how long each layout of the residency
	// section (GPU hosts that hold one model at a time) runs. Default 20 s.
	ResidencyDuration time.Duration
	// InFlight is the memory section's jobs in flight, at most (and by
	// default) broker.MaxCapacity.
	InFlight int
	// GatewayClients is the gateway section's closed-loop concurrency.
	// Default 64.
	GatewayClients int
	// GatewayRate is the gateway section's fixed open-loop rate, requests
	// a second. Default 1000.
	GatewayRate int
	// GatewayDuration is how long each gateway path runs in each phase
	// (peak, one client, fixed rate), cut into Rounds. Default 8 s.
	GatewayDuration time.Duration
	// GatewayProfile, when set, is the file the gateway section writes its
	// raw CPU profile to (for go tool pprof). Default: not written.
	GatewayProfile string
	// Timeout bounds one call. Default 30 s.
	Timeout time.Duration
	// Seed makes workloads and routing choices repeatable. Default 1.
	Seed uint64
	// Command is the command line recorded in the results. Default the
	// process's arguments.
	Command string
	// Log receives progress. Default: discarded.
	Log io.Writer
}

func (o Options) withDefaults() Options {
	if o.LLMQ == "" {
		o.LLMQ = "bin/llmq"
	}
	if len(o.Sections) == 0 {
		o.Sections = allSections()
	}
	if len(o.Rates) == 0 {
		o.Rates = []int{1000, 5000}
	}
	if o.RateDuration <= 0 {
		o.RateDuration = 8 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 4
	}
	if len(o.Concurrency) == 0 {
		o.Concurrency = []int{1, 4, 16, 64, 256, 1024}
	}
	if o.StepDuration <= 0 {
		o.StepDuration = 2 * time.Second
	}
	if o.ProfileDuration <= 0 {
		o.ProfileDuration = 4 * time.Second
	}
	if len(o.Loads) == 0 {
		o.Loads = []float64{0.5, 0.8, 0.95}
	}
	if len(o.Strategies) == 0 {
		o.Strategies = slices.Clone(config.Strategies)
	}
	if len(o.Dispatchers) == 0 {
		o.Dispatchers = []int{1, 2}
	}
	if o.RoutingDuration <= 0 {
		o.RoutingDuration = 6 * time.Second
	}
	if len(o.Hosts) == 0 {
		o.Hosts = DefaultFleet()
	}
	if o.MeanTokens <= 0 {
		o.MeanTokens = 24
	}
	if len(o.HostsProducers) == 0 {
		o.HostsProducers = []int{8, 16}
	}
	if len(o.HostsStrategies) == 0 {
		o.HostsStrategies = []string{config.SimpleShuffle, config.LeastBusy, config.LatencyBased, config.ShortestExpectedDelay}
	}
	if o.HostsDuration <= 0 {
		o.HostsDuration = 6 * time.Second
	}
	if o.HostsWarmUp <= 0 {
		o.HostsWarmUp = time.Second
	}
	if len(o.HostsParts) == 0 {
		o.HostsParts = []string{"speed", "affinity"}
	}
	if o.CacheProducers <= 0 {
		o.CacheProducers = 12
	}
	if o.CacheTurns <= 0 {
		o.CacheTurns = 6
	}
	if o.ResidencyDuration <= 0 {
		o.ResidencyDuration = 20 * time.Second
	}
	if o.InFlight <= 0 || o.InFlight > broker.MaxCapacity {
		// The forwarded case holds every job in one worker, whose slots a
		// heartbeat may report at most broker.MaxCapacity of (a worker
		// configured for more refuses to start).
		o.InFlight = broker.MaxCapacity
	}
	if o.GatewayClients <= 0 {
		o.GatewayClients = 64
	}
	if o.GatewayRate <= 0 {
		o.GatewayRate = 1000
	}
	if o.GatewayDuration <= 0 {
		o.GatewayDuration = 8 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Command == "" {
		o.Command = strings.Join(os.Args, " ")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Results are a run's measurements. A section that did not run is nil.
type Results struct {
	Env        Env                `json:"env"`
	Latency    *LatencyResults    `json:"latency,omitempty"`
	Throughput *ThroughputResults `json:"throughput,omitempty"`
	Routing    *RoutingResults    `json:"routing,omitempty"`
	Hosts      *HostsResults      `json:"hosts,omitempty"`
	Memory     *MemoryResults     `json:"memory,omitempty"`
	Gateway    *GatewayResults    `json:"gateway,omitempty"`
	Residency  *ResidencyResults  `json:"residency,omitempty"`
	// Targets compare the results with the bars of issue 6.
	Targets []Target `json:"targets"`
	Seconds float64  `json:"seconds"`
}

// Env describes where and how the run ran.
type Env struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB int    `json:"memory_gib"`
	OS        string `json:"os"`
	Go        string `json:"go"`
	Commit    string `json:"commit"`
	Command   string `json:"command"`
	Date      string `json:"date"`
	// LoadStart and LoadEnd are the machine's load averages when the run
	// started and ended: other work on a shared machine shows here.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

// Target is one bar and where the run stands against it.
type Target struct {
	Name     string `json:"name"`
	Bar      string `json:"bar"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// runner carries a run's options.
type runner struct {
	o   Options
	log *slog.Logger
}

// Run runs the sections opts names and returns their results. It stops at
// the first section that fails, returning what it has with the error.
func Run(ctx context.Context, opts Options) (*Results, error) {
	o := opts.withDefaults()
	for _, s := range o.Sections {
		if !slices.Contains(allSections(), s) {
			return nil, fmt.Errorf("bench: unknown section %q (want %s)", s, strings.Join(allSections(), ", "))
		}
	}
	r := &runner{o: o, log: slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	start := time.Now()
	res := &Results{Env: environment(o.Command)}
	var err error
	for _, s := range allSections() {
		if !slices.Contains(o.Sections, s) || err != nil {
			continue
		}
		r.log.Info("section", "name", s)
		switch s {
		case SectionLatency:
			res.Latency, err = r.latency(ctx)
		case SectionThroughput:
			res.Throughput, err = r.throughput(ctx)
		case SectionRouting:
			res.Routing, err = r.routing(ctx)
		case SectionHosts:
			res.Hosts, err = r.hosts(ctx)
		case SectionMemory:
			res.Memory, err = r.memory(ctx)
		case SectionGateway:
			res.Gateway, err = r.gateway(ctx)
		case SectionResidency:
			res.Residency, err = r.residency(ctx)
		}
		if err != nil {
			err = fmt.Errorf("bench: %s: %w", s, err)
		}
	}
	res.Targets = targets(res)
	res.Seconds = time.Since(start).Seconds()
	res.Env.LoadEnd = loadAverage()
	return res, err
}

func environment(command string) Env {
	e := Env{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(),
		Command: command, Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), CPU: "unknown", Commit: "unknown", LoadStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					e.MemoryGiB = int((kb + 512<<10) >> 20)
				}
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		e.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			e.Commit += " (with uncommitted changes)"
		}
	}
	return e
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

// errStopped is returned when a run's context ends.
var errStopped = errors.New("bench: stopped")

// Quick returns the options of a smoke run: every section with small
// numbers, in seconds. It checks that the harness works; its numbers mean
// little.
func Quick() Options {
	return Options{
		Rates:             []int{200},
		RateDuration:      500 * time.Millisecond,
		Rounds:            2,
		Concurrency:       []int{1, 8},
		StepDuration:      300 * time.Millisecond,
		ProfileDuration:   300 * time.Millisecond,
		Loads:             []float64{0.5},
		Strategies:        []string{config.LeastBusy, config.SimpleShuffle},
		Dispatchers:       []int{1, 2},
		RoutingDuration:   500 * time.Millisecond,
		HostsProducers:    []int{8},
		HostsStrategies:   []string{config.LeastBusy, config.ShortestExpectedDelay},
		HostsDuration:     400 * time.Millisecond,
		HostsWarmUp:       200 * time.Millisecond,
		CacheProducers:    6,
		CacheTurns:        3,
		ResidencyDuration: 2 * time.Second,
		InFlight:          200,
		GatewayClients:    8,
		GatewayRate:       200,
		GatewayDuration:   600 * time.Millisecond,
		Timeout:           30 * time.Second,
	}
}
