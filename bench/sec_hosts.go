package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
)

// The hosts section measures two things a fleet of GPU hosts asks of a
// router (issue 13): sending each job where it finishes first when hosts
// differ in speed (SpeedFleet, closed loop), and sending a conversation's
// turns back to the host whose prompt cache holds its earlier turns
// (CacheFleet).

// hostTokens is the output length of every speed-fleet job: with TTFT 10
// ms, 24 tokens take 130, 260 and 520 ms on the fleet's hosts.
const hostTokens = 24

// SpeedFleet is issue 13's fleet of hosts of different speed: A and B
// with 4 slots at 130 ms a job, C with 2 at 260 ms, D with 1 at 520 ms.
func SpeedFleet() []HostSpec {
	return []HostSpec{
		{Name: "A", Parallel: 4, MaxQueue: 8, TTFT: 10 * time.Millisecond, TokensPerSecond: 200},
		{Name: "B", Parallel: 4, MaxQueue: 8, TTFT: 10 * time.Millisecond, TokensPerSecond: 200},
		{Name: "C", Parallel: 2, MaxQueue: 8, TTFT: 10 * time.Millisecond, TokensPerSecond: 96},
		{Name: "D", Parallel: 1, MaxQueue: 8, TTFT: 10 * time.Millisecond, TokensPerSecond: 24.0 / 0.51},
	}
}

// CacheFleet is the affinity fleet: four equal hosts of 4 slots with a
// prompt cache. A turn's first token takes 10 ms plus 20 ms per message
// not in the cache; 16 tokens then take 40 ms.
func CacheFleet() []CacheSpec {
	out := make([]CacheSpec, 4)
	for i := range out {
		out[i] = CacheSpec{Name: fmt.Sprintf("gpu-%d", i+1), Parallel: 4, Base: 10 * time.Millisecond, Prefill: 20 * time.Millisecond,
			TokensPerSecond: 400, Entries: 4096}
	}
	return out
}

// StaticSplit sends producers to fixed groups of hosts: Groups[i] is a
// set of host names and Producers[i] how many producers use only it (one
// dispatcher, least-busy within a group) — a fleet partitioned by hand.
type StaticSplit struct {
	Name      string     `json:"name"`
	Groups    [][]string `json:"groups"`
	Producers []int      `json:"producers"`
}

// staticSplits are the hand-made splits tried at a number of producers:
// at 8, everything on A and B (the oracle: they have room for all); at
// more, A and B take what they can and C, then D, the rest.
func staticSplits(producers int) []StaticSplit {
	ab := []string{"A", "B"}
	if producers <= 8 {
		return []StaticSplit{{Name: "oracle: all on A+B", Groups: [][]string{ab}, Producers: []int{producers}}}
	}
	var out []StaticSplit
	for _, c := range []int{0, 2, 3} {
		for _, dd := range []int{0, 1} {
			if producers-c-dd < 8 || (c == 0 && dd == 1) {
				continue
			}
			s := StaticSplit{Name: fmt.Sprintf("static: %d on A+B", producers-c-dd), Groups: [][]string{ab}, Producers: []int{producers - c - dd}}
			if c > 0 {
				s.Name += fmt.Sprintf(", %d on C", c)
				s.Groups, s.Producers = append(s.Groups, []string{"C"}), append(s.Producers, c)
			}
			if dd > 0 {
				s.Name += fmt.Sprintf(", %d on D", dd)
				s.Groups, s.Producers = append(s.Groups, []string{"D"}), append(s.Producers, dd)
			}
			out = append(out, s)
		}
	}
	return out
}

// HostsResults are the hosts section's.
type HostsResults struct {
	Speed    SpeedResults    `json:"speed"`
	Affinity AffinityResults `json:"affinity"`
}

// SpeedResults are the speed fleet's runs.
type SpeedResults struct {
	Hosts  []HostSpec `json:"hosts"`
	Tokens int        `json:"tokens"`
	// Seconds each run measures, after WarmUp seconds of the same load
	// (so that routers know the hosts' latencies).
	Seconds float64    `json:"seconds"`
	WarmUp  float64    `json:"warm_up"`
	Runs    []SpeedRun `json:"runs"`
}

// SpeedRun is one router (a strategy, or a static split) at one number of
// closed-loop producers.
type SpeedRun struct {
	Router      string     `json:"router"`
	Static      bool       `json:"static,omitempty"`
	Dispatchers int        `json:"dispatchers"`
	Producers   int        `json:"producers"`
	Load        LoadResult `json:"load"`
	// Share is each host's part of the completed jobs.
	Share map[string]float64 `json:"share"`
}

// AffinityResults are the cache fleet's runs.
type AffinityResults struct {
	Hosts     []CacheSpec   `json:"hosts"`
	Producers int           `json:"producers"`
	Turns     int           `json:"turns"`
	Seconds   float64       `json:"seconds"`
	WarmUp    float64       `json:"warm_up"`
	Runs      []AffinityRun `json:"runs"`
}

// AffinityRun is one router on the cache fleet.
type AffinityRun struct {
	Router      string     `json:"router"`
	Affinity    bool       `json:"affinity"`
	Dispatchers int        `json:"dispatchers"`
	Cache       bool       `json:"cache"`
	Load        LoadResult `json:"load"`
	// Cache counts, summed over the hosts, of the measured turns.
	Stats CacheStats `json:"stats"`
	// HitRate is hits over the turns that had earlier turns (all could
	// be hits: the caches are large enough).
	HitRate float64 `json:"hit_rate"`
}

func (r *runner) hosts(ctx context.Context) (*HostsResults, error) {
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	o := r.o
	res := &HostsResults{
		Speed:    SpeedResults{Hosts: SpeedFleet(), Tokens: hostTokens, Seconds: o.HostsDuration.Seconds(), WarmUp: o.HostsWarmUp.Seconds()},
		Affinity: AffinityResults{Hosts: CacheFleet(), Producers: o.CacheProducers, Turns: o.CacheTurns, Seconds: o.HostsDuration.Seconds(), WarmUp: o.HostsWarmUp.Seconds()},
	}
	run := 0
	prefix := func() string { run++; return fmt.Sprintf("h%d", run) }
	for _, producers := range o.HostsProducers {
		if !slices.Contains(o.HostsParts, "speed") && !slices.Contains(o.HostsParts, "strategies") {
			break
		}
		for _, n := range o.Dispatchers {
			for _, strategy := range o.HostsStrategies {
				if ctx.Err() != nil {
					return res, errStopped
				}
				sr, err := r.speedOnce(ctx, srv.ClientURL(), prefix(), strategy, n, producers, nil)
				if err != nil {
					return res, err
				}
				r.log.Info("hosts speed", "strategy", strategy, "dispatchers", n, "producers", producers,
					"p50_ms", int(sr.Load.Latency.P50Us/1000), "p99_ms", int(sr.Load.Latency.P99Us/1000), "share", sr.Share)
				res.Speed.Runs = append(res.Speed.Runs, sr)
			}
		}
		for _, split := range staticSplits(producers) {
			if !slices.Contains(o.HostsParts, "speed") {
				break // strategies alone
			}
			if ctx.Err() != nil {
				return res, errStopped
			}
			sr, err := r.speedOnce(ctx, srv.ClientURL(), prefix(), config.LeastBusy, 1, producers, &split)
			if err != nil {
				return res, err
			}
			r.log.Info("hosts speed", "split", split.Name, "producers", producers,
				"p50_ms", int(sr.Load.Latency.P50Us/1000), "p99_ms", int(sr.Load.Latency.P99Us/1000))
			res.Speed.Runs = append(res.Speed.Runs, sr)
		}
	}
	type cacheCase struct {
		strategy    string
		affinity    bool
		dispatchers int
		cache       bool
	}
	cases := []cacheCase{
		{config.LeastBusy, false, 1, true},
		{config.ShortestExpectedDelay, false, 1, true},
		{config.LeastBusy, true, 1, true},
		{config.ShortestExpectedDelay, true, 1, true},
		{config.ShortestExpectedDelay, true, 2, true},
		{config.ShortestExpectedDelay, false, 1, false},
		{config.ShortestExpectedDelay, true, 1, false},
	}
	for _, c := range cases {
		if !slices.Contains(o.HostsParts, "affinity") {
			break
		}
		if ctx.Err() != nil {
			return res, errStopped
		}
		ar, err := r.affinityOnce(ctx, srv.ClientURL(), prefix(), c.strategy, c.affinity, c.dispatchers, c.cache)
		if err != nil {
			return res, err
		}
		r.log.Info("hosts affinity", "strategy", c.strategy, "affinity", c.affinity, "dispatchers", c.dispatchers, "cache", c.cache,
			"turns_per_s", int(ar.Load.Rate), "p50_ms", int(ar.Load.Latency.P50Us/1000), "hit_rate", ar.HitRate)
		res.Affinity.Runs = append(res.Affinity.Runs, ar)
	}
	return res, nil
}

// fleet is a running fleet of a section run: workers, one per host, and
// dispatchers, each on its own connection under a subject prefix.
type fleet struct {
	conns   []*nats.Conn
	workers []*worker.Worker
	disps   []*dispatcher.Dispatcher
	hc      interface{ CloseIdleConnections() }
	client  *client.Client
}

func (f *fleet) close() {
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, d := range f.disps {
		_ = d.Stop(sctx)
	}
	for _, w := range f.workers {
		_ = w.Stop(sctx)
	}
	for _, nc := range f.conns {
		nc.Close()
	}
	if f.hc != nil {
		f.hc.CloseIdleConnections()
	}
}

// fleetHost is one host of a fleet: its name, api_base, slots and the
// tier its worker serves.
type fleetHost struct {
	name, url, tier string
	slots           int
}

// startFleet starts a worker per host (concurrency = the host's slots)
// and n dispatchers serving tiers.
func (r *runner) startFleet(ctx context.Context, url, prefix string, hosts []fleetHost, tiers []string, dc dispatcher.Config, n int) (*fleet, error) {
	f := &fleet{}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	subjects := broker.Subjects{Prefix: prefix}
	hc := provider.NewHTTPClient()
	f.hc = hc
	connect := func(name string) (*nats.Conn, error) {
		nc, err := nats.Connect(url, nats.Name(name))
		if err == nil {
			f.conns = append(f.conns, nc)
		}
		return nc, err
	}
	for _, h := range hosts {
		p, err := ollama.New(provider.Options{Model: "bench", APIBase: h.url, HTTP: hc})
		if err != nil {
			return f, err
		}
		nc, err := connect("worker-" + h.name)
		if err != nil {
			return f, err
		}
		w, err := worker.New(worker.Config{Conn: nc, Subjects: subjects, Tier: h.tier, Deployment: h.name, Provider: p,
			ProviderName: worker.ProviderOllama, Model: "bench", Host: h.url, Concurrency: h.slots, Logger: quiet})
		if err != nil {
			return f, err
		}
		if err := w.Start(ctx); err != nil {
			return f, err
		}
		f.workers = append(f.workers, w)
	}
	for i := range n {
		nc, err := connect(fmt.Sprintf("dispatcher-%d", i))
		if err != nil {
			return f, err
		}
		c := dc
		c.Conn, c.Subjects, c.Tiers, c.Seed, c.Logger = nc, subjects, tiers, r.o.Seed+uint64(i), quiet
		c.Policy = dispatcher.Policy{NumRetries: 2}
		d, err := dispatcher.New(c)
		if err != nil {
			return f, err
		}
		if err := d.Start(ctx); err != nil {
			return f, err
		}
		f.disps = append(f.disps, d)
	}
	for _, d := range f.disps {
		for _, tier := range tiers {
			want := 0
			for _, h := range hosts {
				if h.tier == tier {
					want++
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := d.WaitWorkers(wctx, tier, want)
			cancel()
			if err != nil {
				return f, err
			}
		}
	}
	pnc, err := connect("producer")
	if err != nil {
		return f, err
	}
	f.client = client.New(pnc, client.Config{Subjects: subjects, Timeout: r.o.Timeout, NoResponderRetries: -1})
	return f, nil
}

// speedOnce runs producers closed-loop producers on a fresh speed fleet:
// through n dispatchers of strategy, or, with split, through one
// dispatcher with the fleet partitioned as split says.
func (r *runner) speedOnce(ctx context.Context, url, prefix, strategy string, n, producers int, split *StaticSplit) (SpeedRun, error) {
	sr := SpeedRun{Router: strategy, Dispatchers: n, Producers: producers, Share: map[string]float64{}}
	var ohosts []*OllamaHost
	defer func() {
		for _, h := range ohosts {
			h.Close()
		}
	}()
	var hosts []fleetHost
	tiers := []string{"fleet"}
	tierOfProducer := func(int) string { return "fleet" }
	groupOf := map[string]string{}
	if split != nil {
		sr.Router, sr.Static = split.Name, true
		tiers = nil
		var bounds []int
		total := 0
		for i, g := range split.Groups {
			tier := fmt.Sprintf("group%d", i)
			tiers = append(tiers, tier)
			for _, h := range g {
				groupOf[h] = tier
			}
			total += split.Producers[i]
			bounds = append(bounds, total)
		}
		tierOfProducer = func(k int) string {
			for i, b := range bounds {
				if k < b {
					return tiers[i]
				}
			}
			return tiers[len(tiers)-1]
		}
	}
	for _, spec := range SpeedFleet() {
		tier := "fleet"
		if split != nil {
			if tier = groupOf[spec.Name]; tier == "" {
				continue // a host the split leaves idle
			}
		}
		h, err := StartOllama(spec)
		if err != nil {
			return sr, err
		}
		ohosts = append(ohosts, h)
		hosts = append(hosts, fleetHost{name: spec.Name, url: h.URL(), tier: tier, slots: spec.Parallel})
	}
	f, err := r.startFleet(ctx, url, prefix, hosts, tiers, dispatcher.Config{Strategy: strategy}, n)
	defer f.close()
	if err != nil {
		return sr, err
	}
	tokens := hostTokens
	var mu sync.Mutex
	where := map[string]int{}
	measuring := false
	call := func(ctx context.Context, k, _ int) error {
		req := schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "route me"}}, MaxTokens: &tokens}
		resp, err := f.client.Complete(ctx, tierOfProducer(k), &req)
		if err == nil && resp.Routing != nil {
			mu.Lock()
			if measuring {
				where[resp.Routing.Deployment]++
			}
			mu.Unlock()
		}
		return err
	}
	closedLoop(ctx, producers, r.o.HostsWarmUp, r.o.Timeout, call)
	mu.Lock()
	measuring = true
	mu.Unlock()
	sr.Load = closedLoop(ctx, producers, r.o.HostsDuration, r.o.Timeout, call)
	sr.Load.lat = nil // raw samples are not results
	mu.Lock()
	for h, c := range where {
		sr.Share[h] = float64(c) / float64(max(1, sr.Load.OK))
	}
	mu.Unlock()
	return sr, nil
}

// affinityOnce runs the cache fleet: producers each hold conversations of
// CacheTurns turns, one after another, each turn sent when the last is
// answered.
func (r *runner) affinityOnce(ctx context.Context, url, prefix, strategy string, affinity bool, n int, cache bool) (AffinityRun, error) {
	ar := AffinityRun{Router: strategy, Affinity: affinity, Dispatchers: n, Cache: cache}
	var chosts []*CacheHost
	defer func() {
		for _, h := range chosts {
			h.Close()
		}
	}()
	var hosts []fleetHost
	for _, spec := range CacheFleet() {
		if !cache {
			spec.Entries = 0
		}
		h, err := StartCacheHost(spec)
		if err != nil {
			return ar, err
		}
		chosts = append(chosts, h)
		hosts = append(hosts, fleetHost{name: spec.Name, url: h.URL(), tier: "chat", slots: spec.Parallel})
	}
	f, err := r.startFleet(ctx, url, prefix, hosts, []string{"chat"}, dispatcher.Config{Strategy: strategy, Affinity: affinity}, n)
	defer f.close()
	if err != nil {
		return ar, err
	}
	producers := r.o.CacheProducers
	type conv struct {
		id, turn int
		msgs     []schema.Message
	}
	convs := make([]conv, producers)
	var mu sync.Mutex
	nextID := 0
	tokens := 16
	call := func(ctx context.Context, k, _ int) error {
		c := &convs[k] // only producer k touches it
		if c.turn == 0 || c.turn >= r.o.CacheTurns {
			mu.Lock()
			nextID++
			id := nextID
			mu.Unlock()
			*c = conv{id: id, msgs: []schema.Message{{Role: schema.RoleSystem, Content: "You are a helpful assistant."},
				{Role: schema.RoleUser, Content: schema.Content(fmt.Sprintf("conversation %d: let us talk about topic %d", id, id%97))}}}
		} else {
			c.msgs = append(c.msgs, schema.Message{Role: schema.RoleUser, Content: schema.Content(fmt.Sprintf("and then? (turn %d)", c.turn+1))})
		}
		req := schema.Request{Messages: c.msgs, MaxTokens: &tokens}
		resp, err := f.client.Complete(ctx, "chat", &req)
		if err != nil {
			c.turn = 0 // start a new conversation
			return err
		}
		c.turn++
		c.msgs = append(c.msgs, schema.Message{Role: schema.RoleAssistant, Content: schema.Content(resp.Text())})
		return nil
	}
	closedLoop(ctx, producers, r.o.HostsWarmUp, r.o.Timeout, call)
	var before CacheStats
	for _, h := range chosts {
		s := h.Stats()
		before.Turns, before.First, before.Hits, before.Partial = before.Turns+s.Turns, before.First+s.First, before.Hits+s.Hits, before.Partial+s.Partial
	}
	ar.Load = closedLoop(ctx, producers, r.o.HostsDuration, r.o.Timeout, call)
	ar.Load.lat = nil
	for _, h := range chosts {
		s := h.Stats()
		ar.Stats.Turns += s.Turns
		ar.Stats.First += s.First
		ar.Stats.Hits += s.Hits
		ar.Stats.Partial += s.Partial
	}
	ar.Stats.Turns -= before.Turns
	ar.Stats.First -= before.First
	ar.Stats.Hits -= before.Hits
	ar.Stats.Partial -= before.Partial
	if later := ar.Stats.Turns - ar.Stats.First; later > 0 {
		ar.HitRate = float64(ar.Stats.Hits) / float64(later)
	}
	return ar, nil
}

// closedLoop runs producers loops for d, each sending its next call when
// the last is answered; call gets the producer's number and a global
// call number.
func closedLoop(ctx context.Context, producers int, d, timeout time.Duration, call func(ctx context.Context, producer, i int) error) LoadResult {
	type loop struct {
		lat  []time.Duration
		errs []error
	}
	loops := make([]loop, producers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	start := time.Now()
	end := start.Add(d)
	for k := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &loops[k]
			for ctx.Err() == nil && time.Now().Before(end) {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				cctx, cancel := context.WithTimeout(ctx, timeout)
				began := time.Now()
				err := call(cctx, k, i)
				l.lat = append(l.lat, time.Since(began))
				l.errs = append(l.errs, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	var lat []time.Duration
	var errs []error
	for _, l := range loops {
		lat = append(lat, l.lat...)
		errs = append(errs, l.errs...)
	}
	return tally(lat, errs, time.Since(start))
}
