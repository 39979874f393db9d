package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
)

// Config configures a dispatcher. Only Conn is required.
type Config struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Subjects lays out subjects. Default prefix "llm".
	Subjects broker.Subjects
	// ID names the dispatcher in heartbeats' counts and replies' routing.
	// Default "d-" plus a random suffix.
	ID string
	// Strategy: simple-shuffle (default), least-busy, latency-based,
	// weighted-shuffle (LiteLLM's spellings accepted).
	Strategy string
	// LatencyBuffer is latency-based routing's lowest_latency_buffer.
	// Default 0.
	LatencyBuffer float64
	// Tiers the dispatcher serves from the start (the config's model
	// names). Tiers that workers announce in heartbeats are served too; any
	// other tier is unknown.
	Tiers []string
	// MaxQueue is how many jobs may wait per tier for a free worker; more
	// are answered "overloaded". Default 10000.
	MaxQueue int
	// DefaultTimeout is the deadline of jobs that bring none. Default 600 s.
	DefaultTimeout time.Duration
	// StartupGrace is how long after start a tier with no worker holds its
	// jobs (workers are still announcing themselves) before answering
	// "no_deployments" at once. Default 3 s.
	StartupGrace time.Duration
	// SweepInterval is how often expired jobs and silent workers are
	// looked for. Default 100 ms.
	SweepInterval time.Duration
	// Seed makes routing choices repeatable in tests. Default: random.
	Seed uint64
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Dispatcher routes jobs to workers. Create it with New, run it with
// Start, end it with Stop.
type Dispatcher struct {
	cfg    Config
	nc     *nats.Conn
	log    *slog.Logger
	idVal  []string // shared header value, never mutated
	jobSub *nats.Subscription
	hbSub  *nats.Subscription

	mu       sync.Mutex
	tiers    map[string]*tier
	rng      *rand.Rand
	cands    []*worker
	started  time.Time
	running  bool
	stopping bool
	stopped  bool
	changed  chan struct{} // closed and replaced when the fleet changes

	stopCh chan struct{}
	wg     sync.WaitGroup

	received   atomic.Uint64
	dispatched atomic.Uint64
	noReply    atomic.Uint64
	errMu      sync.Mutex
	errors     map[string]uint64
}

// dispatch is a job ready to forward.
type dispatch struct {
	msg      *nats.Msg
	w        *worker
	deadline time.Time
	queued   time.Duration
}

// failed is a job to answer with an error.
type failed struct {
	msg *nats.Msg
	err *schema.Error
}

// New validates cfg and returns a dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Conn == nil {
		return nil, errors.New("dispatcher: Conn is required")
	}
	s, err := config.NormalizeStrategy(cfg.Strategy)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	cfg.Strategy = s
	if cfg.ID == "" {
		cfg.ID = "d-" + nuid.Next()[14:]
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 10000
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = 600 * time.Second
	}
	if cfg.StartupGrace <= 0 {
		cfg.StartupGrace = 3 * time.Second
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	d := &Dispatcher{
		cfg:     cfg,
		nc:      cfg.Conn,
		log:     cfg.Logger.With("dispatcher", cfg.ID),
		idVal:   []string{cfg.ID},
		tiers:   map[string]*tier{},
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		changed: make(chan struct{}),
		stopCh:  make(chan struct{}),
		errors:  map[string]uint64{},
	}
	for _, t := range cfg.Tiers {
		if !broker.ValidTier(t) {
			return nil, fmt.Errorf("dispatcher: tier %q is not a valid subject suffix", t)
		}
		d.tiers[t] = &tier{name: t, configured: true}
	}
	return d, nil
}

// ID returns the dispatcher's id.
func (d *Dispatcher) ID() string { return d.cfg.ID }

// Start subscribes to jobs and heartbeats and asks workers to announce
// themselves. ctx bounds only the start.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running || d.stopped {
		return errors.New("dispatcher: already started")
	}
	hb, err := d.nc.Subscribe(d.cfg.Subjects.HeartbeatWildcard(), d.onHeartbeat)
	if err != nil {
		return fmt.Errorf("dispatcher: subscribe heartbeats: %w", err)
	}
	jobs, err := d.nc.QueueSubscribe(d.cfg.Subjects.JobsWildcard(), d.cfg.Subjects.DispatcherQueue(), d.onJob)
	if err != nil {
		_ = hb.Unsubscribe()
		return fmt.Errorf("dispatcher: subscribe jobs: %w", err)
	}
	_ = jobs.SetPendingLimits(-1, 256<<20)
	d.hbSub, d.jobSub = hb, jobs
	if err := broker.Flush(ctx, d.nc); err != nil {
		_ = hb.Unsubscribe()
		_ = jobs.Unsubscribe()
		return fmt.Errorf("dispatcher: flush: %w", err)
	}
	if err := d.nc.Publish(d.cfg.Subjects.Announce(), nil); err != nil {
		d.log.Warn("announce", "err", err)
	}
	d.started = time.Now()
	d.running = true
	d.wg.Add(1)
	go d.sweepLoop()
	d.log.Info("dispatcher started", "strategy", d.cfg.Strategy, "subject", d.cfg.Subjects.JobsWildcard(), "tiers", d.cfg.Tiers)
	return nil
}

// Stop stops taking jobs and hands back the ones it holds: each queued job
// is published again on its tier's subject for another dispatcher to take
// (a producer with no other dispatcher gets NATS's "no responders" at
// once). Safe to call twice.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.running {
		d.stopped = true
		d.mu.Unlock()
		return nil
	}
	d.running = false
	d.stopped = true
	d.mu.Unlock()

	err := d.jobSub.Unsubscribe()
	d.mu.Lock()
	d.stopping = true
	var held []pending
	for _, t := range d.tiers {
		held = t.queue.drain(held)
	}
	d.mu.Unlock()
	close(d.stopCh)
	d.wg.Wait()
	_ = d.hbSub.Unsubscribe()
	for _, p := range held {
		d.handBack(p.msg)
	}
	if ferr := broker.Flush(ctx, d.nc); ferr != nil && err == nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
		err = ferr
	}
	d.log.Info("dispatcher stopped", "handed_back", len(held), "dispatched", d.dispatched.Load())
	return err
}

// handBack publishes a job again on its tier's subject.
func (d *Dispatcher) handBack(m *nats.Msg) {
	if err := d.nc.PublishMsg(&nats.Msg{Subject: m.Subject, Reply: m.Reply, Header: m.Header, Data: m.Data}); err != nil {
		d.reply(m, schema.Errorf(schema.CodeNoDeployments, "dispatcher stopping and could not hand the job back: %v", err))
	}
}

// onJob runs on the job subscription's goroutine for every job.
func (d *Dispatcher) onJob(m *nats.Msg) {
	d.received.Add(1)
	now := time.Now()
	if m.Reply == "" {
		d.noReply.Add(1)
		d.log.Warn("job without a reply subject dropped", "subject", m.Subject, "bytes", len(m.Data))
		return
	}
	name, _ := d.cfg.Subjects.Tier(m.Subject)
	deadline, err := d.deadline(m, now)
	if err != nil {
		d.reply(m, err)
		return
	}
	if !deadline.After(now) {
		d.reply(m, schema.NewError(schema.CodeTimeout, "the job's deadline had passed when it reached the dispatcher"))
		return
	}
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		d.handBack(m)
		return
	}
	t := d.tiers[name]
	if t == nil {
		known := d.tierNames()
		d.mu.Unlock()
		d.reply(m, schema.Errorf(schema.CodeUnknownTier, "unknown tier %q (known: %s)", name, strings.Join(known, ", ")))
		return
	}
	if t.queue.len() == 0 {
		if w := d.pick(t); w != nil {
			w.sent++
			d.mu.Unlock()
			d.forward(dispatch{msg: m, w: w, deadline: deadline})
			return
		}
	}
	if len(t.workers) == 0 && now.Sub(d.started) > d.cfg.StartupGrace {
		d.mu.Unlock()
		d.reply(m, schema.Errorf(schema.CodeNoDeployments, "no worker serves tier %q", name))
		return
	}
	ok := t.queue.push(pending{msg: m, arrived: now, deadline: deadline}, d.cfg.MaxQueue)
	d.mu.Unlock()
	if !ok {
		d.reply(m, schema.Errorf(schema.CodeOverloaded, "tier %q has %d jobs waiting, the most this dispatcher holds", name, d.cfg.MaxQueue).WithRetryAfter(time.Second))
	}
}

// deadline reads the job's deadline: Llmq-Deadline, else Llmq-Timeout
// from now, else the default time-out.
func (d *Dispatcher) deadline(m *nats.Msg, now time.Time) (time.Time, *schema.Error) {
	if m.Header != nil {
		if v := m.Header.Get(schema.HeaderDeadline); v != "" {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return time.Time{}, schema.Errorf(schema.CodeBadRequest, "header %s: %q is not Unix milliseconds", schema.HeaderDeadline, v)
			}
			return time.UnixMilli(ms), nil
		}
		if v := m.Header.Get(schema.HeaderTimeout); v != "" {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms <= 0 {
				return time.Time{}, schema.Errorf(schema.CodeBadRequest, "header %s: %q is not a positive number of milliseconds", schema.HeaderTimeout, v)
			}
			return now.Add(time.Duration(ms) * time.Millisecond), nil
		}
	}
	return now.Add(d.cfg.DefaultTimeout), nil
}

// forward sends a job to the worker picked for it. It runs without the
// lock.
func (d *Dispatcher) forward(j dispatch) {
	h := j.msg.Header
	if h == nil {
		h = nats.Header{}
	}
	h[schema.HeaderDispatcher] = d.idVal
	h[schema.HeaderDeadline] = []string{strconv.FormatInt(j.deadline.UnixMilli(), 10)}
	if j.queued > 0 {
		h[schema.HeaderQueuedUs] = []string{strconv.FormatInt(j.queued.Microseconds(), 10)}
	}
	delete(h, schema.HeaderTimeout)
	err := d.nc.PublishMsg(&nats.Msg{Subject: j.w.subject, Reply: j.msg.Reply, Header: h, Data: j.msg.Data})
	if err == nil {
		d.dispatched.Add(1)
		return
	}
	d.mu.Lock()
	j.w.sent--
	d.mu.Unlock()
	if errors.Is(err, nats.ErrMaxPayload) {
		d.reply(j.msg, schema.Errorf(schema.CodePayloadTooLarge, "job of %d bytes is over the NATS max payload of %d bytes", len(j.msg.Data), d.nc.MaxPayload()))
		return
	}
	d.reply(j.msg, schema.Errorf(schema.CodeInternal, "forward to worker: %v", err))
}

// reply answers a job with an error, in the producer's codec.
func (d *Dispatcher) reply(m *nats.Msg, e *schema.Error) {
	d.errMu.Lock()
	d.errors[e.Code]++
	d.errMu.Unlock()
	if err := broker.ReplyError(d.nc, m.Reply, broker.CodecOf(m), e); err != nil {
		d.log.Error("error reply", "code", e.Code, "err", err)
	}
}

// onHeartbeat updates the fleet and dispatches what the beat made room for.
func (d *Dispatcher) onHeartbeat(m *nats.Msg) {
	var hb schema.Heartbeat
	if err := msgpack.Unmarshal(m.Data, &hb); err != nil {
		d.log.Warn("malformed heartbeat", "subject", m.Subject, "err", err)
		return
	}
	if hb.Tier == "" || hb.Worker == "" || hb.Subject == "" || hb.Capacity <= 0 {
		d.log.Warn("heartbeat missing fields", "subject", m.Subject, "worker", hb.Worker)
		return
	}
	now := time.Now()
	var out []dispatch
	var fails []failed
	d.mu.Lock()
	t := d.tiers[hb.Tier]
	if t == nil {
		t = &tier{name: hb.Tier}
		d.tiers[hb.Tier] = t
	}
	i, w := t.find(hb.Worker)
	switch {
	case hb.State == schema.StateStopped:
		if w != nil {
			t.remove(i)
			d.notify()
			d.log.Info("worker left", "worker", hb.Worker, "tier", hb.Tier)
		}
		d.mu.Unlock()
		return
	case w == nil:
		w = &worker{subject: hb.Subject}
		t.workers = append(t.workers, w)
		d.notify()
		d.log.Info("worker joined", "worker", hb.Worker, "tier", hb.Tier, "deployment", hb.Deployment, "capacity", hb.Capacity)
	case hb.Seq <= w.hb.Seq:
		d.mu.Unlock() // an old beat overtaken by a newer one
		return
	}
	if w.hb.State != hb.State && w.hb.State != "" {
		d.notify()
	}
	w.hb = hb
	w.seen = hb.Received[d.cfg.ID]
	w.lastSeen = now
	t.lastWorker = now
	out, fails = d.drain(t, now, out, fails)
	d.mu.Unlock()
	d.send(out, fails)
}

// drain moves queued jobs to free workers, in order, until the queue is
// empty or no worker has a free slot. Expired jobs on the way are failed.
// Called with d.mu held.
func (d *Dispatcher) drain(t *tier, now time.Time, out []dispatch, fails []failed) ([]dispatch, []failed) {
	for t.queue.len() > 0 {
		p := t.queue.peek()
		if p.deadline.Before(now) {
			q := t.queue.pop()
			fails = append(fails, failed{q.msg, schema.Errorf(schema.CodeTimeout, "no worker of tier %q was free before the job's deadline", t.name)})
			continue
		}
		w := d.pick(t)
		if w == nil {
			break
		}
		w.sent++
		q := t.queue.pop()
		out = append(out, dispatch{msg: q.msg, w: w, deadline: q.deadline, queued: now.Sub(q.arrived)})
	}
	return out, fails
}

func (d *Dispatcher) send(out []dispatch, fails []failed) {
	for _, j := range out {
		d.forward(j)
	}
	for _, f := range fails {
		d.reply(f.msg, f.err)
	}
}

// sweepLoop drops silent workers and answers jobs that waited too long.
func (d *Dispatcher) sweepLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.SweepInterval)
	defer t.Stop()
	var out []dispatch
	var fails []failed
	for {
		select {
		case <-d.stopCh:
			return
		case now := <-t.C:
			out, fails = d.sweep(now, out[:0], fails[:0])
			d.send(out, fails)
			clear(out)
			clear(fails)
		}
	}
}

func (d *Dispatcher) sweep(now time.Time, out []dispatch, fails []failed) ([]dispatch, []failed) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.tiers {
		for i := len(t.workers) - 1; i >= 0; i-- {
			if w := t.workers[i]; w.expired(now) {
				d.log.Warn("worker lost: no heartbeat for three intervals", "worker", w.hb.Worker, "tier", t.name, "last_seen", w.lastSeen)
				t.remove(i)
				d.notify()
			}
		}
		var expired []pending
		expired = t.queue.removeExpired(now, expired)
		for _, p := range expired {
			fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeTimeout, "no worker of tier %q was free before the job's deadline", t.name)})
		}
		if len(t.workers) == 0 && t.queue.len() > 0 && now.Sub(d.started) > d.cfg.StartupGrace {
			var stranded []pending
			stranded = t.queue.drain(stranded)
			for _, p := range stranded {
				fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeNoDeployments, "no worker serves tier %q", t.name)})
			}
		}
		out, fails = d.drain(t, now, out, fails)
	}
	return out, fails
}

// pick chooses a worker of t with a free slot, or nil. Called with d.mu
// held.
func (d *Dispatcher) pick(t *tier) *worker {
	d.cands = t.candidates(d.cands)
	w := pick(d.cfg.Strategy, d.cands, d.rng, d.cfg.LatencyBuffer)
	clear(d.cands)
	return w
}

// notify wakes those waiting for a fleet change. Called with d.mu held.
func (d *Dispatcher) notify() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *Dispatcher) tierNames() []string {
	names := make([]string, 0, len(d.tiers))
	for n := range d.tiers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// WaitWorkers blocks until the dispatcher knows at least n ready workers
// of tier, or ctx ends.
func (d *Dispatcher) WaitWorkers(ctx context.Context, tierName string, n int) error {
	for {
		d.mu.Lock()
		have := 0
		if t := d.tiers[tierName]; t != nil {
			for _, w := range t.workers {
				if w.hb.State == schema.StateReady {
					have++
				}
			}
		}
		ch := d.changed
		d.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("dispatcher: %d of %d workers of tier %q: %w", have, n, tierName, ctx.Err())
		}
	}
}

// Stats are a dispatcher's counters.
type Stats struct {
	ID         string            `json:"id"`
	Strategy   string            `json:"strategy"`
	Received   uint64            `json:"received"`
	Dispatched uint64            `json:"dispatched"`
	NoReply    uint64            `json:"no_reply"`
	Errors     map[string]uint64 `json:"errors"`
	Tiers      []TierStats       `json:"tiers"`
}

// TierStats describe one tier as the dispatcher sees it.
type TierStats struct {
	Name    string             `json:"name"`
	Queued  int                `json:"queued"`
	Workers []schema.Heartbeat `json:"workers"`
}

// Stats returns a snapshot of the dispatcher's counters and fleet.
func (d *Dispatcher) Stats() Stats {
	s := Stats{ID: d.cfg.ID, Strategy: d.cfg.Strategy, Received: d.received.Load(), Dispatched: d.dispatched.Load(), NoReply: d.noReply.Load(), Errors: map[string]uint64{}}
	d.errMu.Lock()
	for k, v := range d.errors {
		s.Errors[k] = v
	}
	d.errMu.Unlock()
	d.mu.Lock()
	for _, name := range d.tierNames() {
		t := d.tiers[name]
		ts := TierStats{Name: name, Queued: t.queue.len()}
		for _, w := range t.workers {
			ts.Workers = append(ts.Workers, w.hb)
		}
		slices.SortFunc(ts.Workers, func(a, b schema.Heartbeat) int { return strings.Compare(a.Worker, b.Worker) })
		s.Tiers = append(s.Tiers, ts)
	}
	d.mu.Unlock()
	return s
}
