package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"

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
	// weighted-shuffle, usage-based, cost-based (LiteLLM's spellings
	// accepted). Whatever the strategy, deployments at their usage limits
	// (rpm, tpm) are skipped.
	Strategy string
	// LatencyBuffer is latency-based routing's lowest_latency_buffer.
	// Default 0.
	LatencyBuffer float64
	// Tiers the dispatcher serves from the start (the config's model
	// names). Tiers that workers announce in heartbeats are served too
	// (within MaxLearnedTiers); any other tier is unknown. A tier may be
	// a wildcard pattern ("openai/*", "*"): it serves the names it
	// matches (see names.go).
	Tiers []string
	// Aliases map names a job may ask for to the tier they stand for
	// (router_settings.model_group_alias). Default none.
	Aliases map[string]string
	// MaxQueue is how many jobs may wait per tier for a free worker; more
	// are answered "overloaded". Default 10000.
	MaxQueue int
	// DefaultTimeout is the deadline of jobs that bring none. Default 600 s.
	DefaultTimeout time.Duration
	// MaxTimeout bounds every job's deadline: a job whose Llmq-Deadline or
	// Llmq-Timeout lies further ahead is given now + MaxTimeout (and the
	// worker is told that deadline), so that no number a producer sends
	// can overflow into a deadline already passed or hold a job without
	// end. Default 24 h (and never less than DefaultTimeout).
	MaxTimeout time.Duration
	// MaxLearnedTiers bounds the tiers learned from heartbeats (tiers not
	// in Tiers). A beat naming a new tier past it is refused (counted in
	// Stats.Dropped.TierLimit). Default 256.
	MaxLearnedTiers int
	// LearnedTierExpiry is how long a learned tier is kept with no worker
	// and no job; it is then forgotten (and unknown). Default 1 min.
	LearnedTierExpiry time.Duration
	// MaxWorkers bounds the workers the dispatcher tracks, in all tiers. A
	// beat of a new worker past it is refused (counted in
	// Stats.Dropped.WorkerLimit). Default 4096.
	MaxWorkers int
	// StartupGrace is how long after start a tier with no worker holds its
	// jobs (workers are still announcing themselves) before answering
	// "no_deployments" at once. Default 3 s.
	StartupGrace time.Duration
	// SweepInterval is how often expired jobs, silent workers and retries
	// whose back-off ended are looked for. Default 20 ms.
	SweepInterval time.Duration
	// Policy says what happens when an attempt fails: retries, back-off,
	// fallbacks. The zero value answers the producer with the failure.
	Policy Policy
	// TagFiltering turns tag routing on (LiteLLM's enable_tag_filtering;
	// see tags.go); TagMatchAll wants a deployment with every tag of the
	// job instead of one (tag_filtering_match_any: false).
	TagFiltering, TagMatchAll bool
	// Affinity turns conversation affinity on (router_settings.
	// llmq_conversation_affinity; see affinity.go): the jobs of one
	// conversation go to the host that served its earlier turns while it
	// has room. Default off.
	Affinity bool
	// NoResidency turns residency-aware routing off (residency.go): jobs
	// go to workers whose host has not loaded their model as readily as
	// to warm ones, as LiteLLM routes. Default: on.
	NoResidency bool
	// Seed makes routing choices repeatable in tests. Default: random.
	Seed uint64
	// Observer, when set, is told of heartbeats, lost workers and each
	// job forwarded or answered with an error (see Observer). Default none.
	Observer Observer
	// NoService leaves out the NATS micro service the dispatcher registers
	// (ServiceName; see startService). Default: registered.
	NoService bool
	// Version is reported to NATS micro: a semantic version, else "0.0.0".
	Version string
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Dispatcher routes jobs to workers. Create it with New, run it with
// Start, end it with Stop.
type Dispatcher struct {
	cfg   Config
	nc    *nats.Conn
	log   *slog.Logger
	idVal []string // shared header value, never mutated
	// salt is a hash of the dispatcher's id: its preference among equal
	// workers (shortest-expected-delay).
	salt     uint64
	jobSub   *nats.Subscription
	hbSub    *nats.Subscription
	retrySub *nats.Subscription
	svc      micro.Service

	mu       sync.Mutex
	tiers    map[string]*tier
	rng      *rand.Rand
	cands    []*worker
	delayed  delayHeap
	due      []delayedJob
	started  time.Time
	running  bool
	stopping bool
	stopped  bool
	// taking is running, read without the lock by Take.
	taking atomic.Bool
	// local are the workers in this process by subject (AddLocal),
	// replaced whole under mu and read without it.
	local   atomic.Pointer[map[string]LocalWorker]
	changed chan struct{} // closed and replaced when the fleet changes
	// learned counts the tiers learned from beats, nworkers the workers
	// known in all tiers (Config.MaxLearnedTiers, Config.MaxWorkers).
	learned, nworkers int
	// byID is the tier of each known worker.
	byID map[string]*tier
	// names resolves the names jobs ask for (names.go).
	names names
	// reconnects is the connection's reconnect count the sweep last saw.
	reconnects uint64

	stopCh chan struct{}
	wg     sync.WaitGroup

	received     atomic.Uint64
	dispatched   atomic.Uint64
	noReply      atomic.Uint64
	retries      atomic.Uint64
	fallbacks    atomic.Uint64
	redispatched atomic.Uint64
	errMu        sync.Mutex
	errors       map[string]uint64
	drops        drops
}

// dispatch is a job ready to forward.
type dispatch struct {
	p      pending
	w      *worker
	seq    uint64
	tier   string
	queued time.Duration
	// waiting is how long the oldest job left in the tier's queue had
	// waited (its Llmq-Queue-Wait-Us), 0 when none was left.
	waiting time.Duration
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
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 24 * time.Hour
	}
	cfg.MaxTimeout = max(cfg.MaxTimeout, cfg.DefaultTimeout)
	if cfg.MaxLearnedTiers <= 0 {
		cfg.MaxLearnedTiers = 256
	}
	if cfg.LearnedTierExpiry <= 0 {
		cfg.LearnedTierExpiry = time.Minute
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 4096
	}
	if cfg.StartupGrace <= 0 {
		cfg.StartupGrace = 3 * time.Second
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 20 * time.Millisecond
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
		salt:    hashString(cfg.ID),
		tiers:   map[string]*tier{},
		byID:    map[string]*tier{},
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		changed: make(chan struct{}),
		stopCh:  make(chan struct{}),
		errors:  map[string]uint64{},
	}
	for _, t := range cfg.Tiers {
		if !broker.ValidGroup(t) {
			return nil, fmt.Errorf("dispatcher: tier %q is not a valid tier name or wildcard pattern", t)
		}
		d.tiers[t] = &tier{name: t, configured: true}
	}
	if err := checkAliases(cfg.Aliases); err != nil {
		return nil, err
	}
	d.names.dirty = true
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
	retry, err := d.nc.QueueSubscribe(d.cfg.Subjects.Retry(), d.cfg.Subjects.DispatcherQueue(), d.onRetry)
	if err != nil {
		_ = hb.Unsubscribe()
		_ = jobs.Unsubscribe()
		return fmt.Errorf("dispatcher: subscribe retries: %w", err)
	}
	d.hbSub, d.jobSub, d.retrySub = hb, jobs, retry
	if err := d.startService(); err != nil {
		_ = hb.Unsubscribe()
		_ = jobs.Unsubscribe()
		_ = retry.Unsubscribe()
		return err
	}
	if err := broker.Flush(ctx, d.nc); err != nil {
		d.stopService()
		_ = hb.Unsubscribe()
		_ = jobs.Unsubscribe()
		_ = retry.Unsubscribe()
		return fmt.Errorf("dispatcher: flush: %w", err)
	}
	d.reconnects = d.nc.Stats().Reconnects
	d.announce()
	d.started = time.Now()
	d.running = true
	d.taking.Store(true)
	d.wg.Add(1)
	go d.sweepLoop()
	d.log.Info("dispatcher started", "strategy", d.cfg.Strategy, "subject", d.cfg.Subjects.JobsWildcard(), "tiers", d.cfg.Tiers)
	return nil
}

// Stop stops taking jobs and hands back the ones it holds: each queued job
// (and each retry waiting out its back-off) is published again on its
// tier's subject for another dispatcher to take. With no other dispatcher
// the job is lost and its producer times out (NATS tells only the
// publisher, here the dispatcher, that nobody listened). Safe to call
// twice.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.running {
		d.stopped = true
		d.mu.Unlock()
		return nil
	}
	d.running = false
	d.taking.Store(false)
	d.stopped = true
	d.mu.Unlock()

	err := errors.Join(d.jobSub.Unsubscribe(), d.retrySub.Unsubscribe())
	d.stopService()
	d.mu.Lock()
	d.stopping = true
	type heldJob struct {
		tier string
		p    pending
	}
	var held []heldJob
	var buf []pending
	for _, t := range d.tiers {
		buf = t.batch.drain(t.queue.drain(buf[:0]))
		for _, p := range buf {
			held = append(held, heldJob{t.name, p})
		}
	}
	for _, dj := range d.delayed {
		held = append(held, heldJob{dj.tier, dj.job})
		if t := d.tiers[dj.tier]; t != nil {
			*t.heldOf(&dj.job)--
		}
	}
	d.delayed = nil
	d.mu.Unlock()
	close(d.stopCh)
	d.wg.Wait()
	_ = d.hbSub.Unsubscribe()
	for _, h := range held {
		d.handBack(h.p.msg, cmpOr(h.p.origin, h.tier))
	}
	if ferr := broker.Flush(ctx, d.nc); ferr != nil && err == nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
		err = ferr
	}
	d.log.Info("dispatcher stopped", "handed_back", len(held), "dispatched", d.dispatched.Load())
	return err
}

// handBack publishes a job again on its tier's subject, for another
// dispatcher.
func (d *Dispatcher) handBack(m *nats.Msg, tierName string) {
	subject, ok := d.handBackSubject(m, tierName)
	if !ok {
		d.reply(m, schema.Errorf(schema.CodeNoDeployments, "dispatcher stopping, and the job names no model to hand it back with"))
		return
	}
	if err := d.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: m.Reply, Header: m.Header, Data: m.Data}); err != nil {
		d.reply(m, schema.Errorf(schema.CodeNoDeployments, "dispatcher stopping and could not hand the job back: %v", err))
	}
}

// announce asks every worker to beat at once: at start, and after the
// connection reconnected (beats sent while it was down, or over a dead
// route, were missed).
func (d *Dispatcher) announce() {
	if err := d.nc.Publish(d.cfg.Subjects.Announce(), nil); err != nil {
		d.log.Warn("announce", "err", err)
	}
}

// onJob runs on the job subscription's goroutine for every job.
func (d *Dispatcher) onJob(m *nats.Msg) {
	d.received.Add(1)
	now := time.Now()
	if m.Reply == "" {
		n := d.noReply.Add(1)
		if d.drops.noReplyLog.allow(now) {
			d.log.Warn("job without a reply subject dropped", "subject", clip(m.Subject), "bytes", len(m.Data), "dropped", n)
		}
		return
	}
	if err := d.cfg.Subjects.CheckReply(m.Reply); err != nil {
		d.refuseReply(m, "job", err, now)
		return
	}
	if stripInternal(m.Header) > 0 {
		n := d.drops.internalHeaders.Add(1)
		if d.drops.headerLog.allow(now) {
			d.log.Warn("job carried headers only llmq components set; removed", "subject", clip(m.Subject), "jobs", n)
		}
	}
	name, _ := d.cfg.Subjects.Tier(m.Subject)
	asked, e := jobModel(m, name)
	if e != nil {
		d.reply(m, e)
		return
	}
	var sel *selection
	if d.cfg.TagFiltering {
		sel = &selection{filter: true, all: d.cfg.TagMatchAll, tags: jobTags(m)}
	}
	deadline, err := deadlineOf(m.Header, now, d.cfg.DefaultTimeout, d.cfg.MaxTimeout)
	if err != nil {
		d.reply(m, err)
		return
	}
	var key uint64
	if d.cfg.Affinity {
		key = sessionKey(m)
	}
	if !deadline.After(now) {
		d.reply(m, schema.NewError(schema.CodeTimeout, "the job's deadline had passed when it reached the dispatcher"))
		return
	}
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		d.handBack(m, name)
		return
	}
	t := d.route(m, asked)
	if t == nil {
		e := d.unknownModel(asked)
		d.mu.Unlock()
		d.reply(m, e)
		return
	}
	name = t.name
	p := pending{msg: m, arrived: now, deadline: deadline, batch: m.Header.Get(schema.HeaderPriority) == schema.PriorityBatch, sel: sel, key: key}
	if sel != nil {
		p.sel.prepare(t, now)
		if e := t.tagRefusal(&p, now); e != nil {
			d.mu.Unlock()
			d.reply(m, e)
			return
		}
	}
	if t.queue.len() == 0 && (!p.batch || t.batch.len() == 0) {
		if w := d.pick(t, &p, now); w != nil {
			j := d.assign(t, w, p, now)
			d.mu.Unlock()
			d.forward(j)
			return
		}
	}
	// A tier whose every worker rests: a new job falls back or is told so
	// at once. Jobs already queued keep waiting for the first worker back
	// (or their deadline): a rest is short, and failing them all over to
	// the fallback tier at once would move the tier's whole load there
	// (measured in the fault test: 95% of jobs fell back, and the fallback
	// tier's single deployment then failed some).
	if cooling, back := t.allCooling(now); cooling {
		if m.Header.Get(schema.HeaderDisableFallbacks) != "true" {
			if out, fails, ok := d.fallback(p, name, schema.CodeCoolingDown, now, nil, nil); ok {
				d.mu.Unlock()
				d.send(out, fails)
				return
			}
		}
		d.mu.Unlock()
		d.reply(m, schema.Errorf(schema.CodeCoolingDown, "every deployment of tier %q is cooling down after failures", name).WithRetryAfter(back.Sub(now)))
		return
	}
	if len(t.workers) == 0 && now.Sub(d.started) > d.cfg.StartupGrace {
		d.mu.Unlock()
		d.reply(m, schema.Errorf(schema.CodeNoDeployments, "no worker serves tier %q", name))
		return
	}
	// Every deployment at its usage limit: the job waits for room while
	// its deadline allows; when room comes too late it falls back, or is
	// told when room comes.
	if blocked, frees := t.rateBlocked(now); blocked && !frees.Before(p.deadline) {
		if m.Header.Get(schema.HeaderDisableFallbacks) != "true" {
			if out, fails, ok := d.fallback(p, name, schema.CodeRateLimited, now, nil, nil); ok {
				d.mu.Unlock()
				d.send(out, fails)
				return
			}
		}
		d.mu.Unlock()
		d.reply(m, rateLimited(name, now, frees))
		return
	}
	ok := t.room(&p, d.cfg.MaxQueue) && t.queueOf(&p).push(p, d.cfg.MaxQueue)
	if ok && d.cfg.Strategy == config.ShortestExpectedDelay {
		// Jobs ahead may be waiting for busy workers while a slot this
		// one should take is free: look at once, not at the next beat.
		out, fails := d.drain(t, now, nil, nil)
		d.mu.Unlock()
		d.send(out, fails)
		return
	}
	d.mu.Unlock()
	if !ok {
		d.reply(m, schema.Errorf(schema.CodeOverloaded, "tier %q has %d jobs waiting, the most this dispatcher holds", name, d.cfg.MaxQueue).WithRetryAfter(time.Second))
	}
}

// assign books job p on worker w of tier t and returns it ready to
// forward. Called with d.mu held.
func (d *Dispatcher) assign(t *tier, w *worker, p pending, now time.Time) dispatch {
	w.sent++
	if w.jobs == nil {
		w.jobs = map[uint64]*pending{}
	}
	tracked := p
	tracked.sent = now
	w.jobs[w.sent] = &tracked
	j := dispatch{p: p, w: w, seq: w.sent, tier: t.name, queued: now.Sub(p.arrived)}
	if t.queue.len() > 0 {
		j.waiting = max(now.Sub(t.queue.at(0).arrived), time.Microsecond)
	}
	d.stamp(j)
	return j
}

// stamp sets the headers a worker reads. It runs under d.mu, so a job is
// never stamped twice at once (a lost worker's jobs are re-stamped).
func (d *Dispatcher) stamp(j dispatch) {
	m := j.p.msg
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	h := m.Header
	h[schema.HeaderDispatcher] = d.idVal
	h[schema.HeaderDeadline] = []string{strconv.FormatInt(j.p.deadline.UnixMilli(), 10)}
	h[schema.HeaderJobSeq] = []string{strconv.FormatUint(j.seq, 10)}
	if j.queued > 0 {
		h[schema.HeaderQueuedUs] = []string{strconv.FormatInt(j.queued.Microseconds(), 10)}
	} else {
		delete(h, schema.HeaderQueuedUs)
	}
	if j.waiting > 0 {
		h[schema.HeaderQueueWaitUs] = []string{strconv.FormatInt(j.waiting.Microseconds(), 10)}
	} else {
		delete(h, schema.HeaderQueueWaitUs)
	}
	delete(h, schema.HeaderTimeout)
	if j.p.attempts > 0 || j.p.origin != "" {
		// Only jobs that failed somewhere carry their history.
		h[schema.HeaderTier] = []string{j.tier}
		h[schema.HeaderAttempt] = []string{strconv.Itoa(j.p.attempts + 1)}
		h[schema.HeaderTierAttempts] = []string{strconv.Itoa(j.p.tierAttempts + 1)}
		h[schema.HeaderExclude] = []string{strings.Join(j.p.exclude, ",")}
		h[schema.HeaderFallbacks] = []string{strconv.Itoa(j.p.fallbacks)}
		if j.p.origin != "" {
			h[schema.HeaderOriginTier] = []string{j.p.origin}
		}
	}
}

// deadlineOf reads a job's deadline from its headers: Llmq-Deadline, else
// Llmq-Timeout from now, else now + def; never later than now + limit
// (Config.MaxTimeout), so a huge value cannot overflow into the past.
func deadlineOf(h nats.Header, now time.Time, def, limit time.Duration) (time.Time, *schema.Error) {
	latest := now.Add(limit)
	if v := h.Get(schema.HeaderDeadline); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return time.Time{}, schema.Errorf(schema.CodeBadRequest, "header %s: %.32q is not a positive number of Unix milliseconds", schema.HeaderDeadline, v)
		}
		if ms > latest.UnixMilli() {
			return latest, nil
		}
		return time.UnixMilli(ms), nil
	}
	if v := h.Get(schema.HeaderTimeout); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return time.Time{}, schema.Errorf(schema.CodeBadRequest, "header %s: %.32q is not a positive number of milliseconds", schema.HeaderTimeout, v)
		}
		if ms > limit.Milliseconds() {
			return latest, nil
		}
		return now.Add(time.Duration(ms) * time.Millisecond), nil
	}
	return now.Add(def), nil
}

// forward sends a job to the worker picked for it. It runs without the
// lock.
func (d *Dispatcher) forward(j dispatch) {
	m := j.p.msg
	h := m.Header
	var err error
	// A local worker gets a header of its own: this one is stamped again
	// if the job is sent again. stamp replaces values, never changes one,
	// so a shallow copy is enough.
	if lw := d.localWorker(j.w.subject); lw == nil || !lw.Take(&nats.Msg{Subject: j.w.subject, Reply: m.Reply, Header: maps.Clone(h), Data: m.Data}) {
		err = d.nc.PublishMsg(&nats.Msg{Subject: j.w.subject, Reply: m.Reply, Header: h, Data: m.Data})
	}
	if err == nil {
		d.dispatched.Add(1)
		d.observeDispatched(j.tier, j.queued)
		return
	}
	d.mu.Lock()
	delete(j.w.jobs, j.seq)
	d.mu.Unlock()
	if errors.Is(err, nats.ErrMaxPayload) {
		d.reply(m, schema.Errorf(schema.CodePayloadTooLarge, "job of %d bytes is over the NATS max payload of %d bytes", len(m.Data), d.nc.MaxPayload()))
		return
	}
	d.reply(m, schema.Errorf(schema.CodeInternal, "forward to worker: %v", err))
}

// reply answers a job with an error, in the producer's codec.
func (d *Dispatcher) reply(m *nats.Msg, e *schema.Error) {
	d.errMu.Lock()
	d.errors[e.Code]++
	d.errMu.Unlock()
	d.observeAnswered(m, e.Code)
	if err := broker.ReplyError(d.nc, m.Reply, broker.CodecOf(m), e); err != nil {
		d.log.Error("error reply", "code", e.Code, "err", err)
	}
}

// drain moves queued jobs to free workers, in order, until the queue is
// empty or no worker has a free slot. Expired jobs on the way are failed.
// Called with d.mu held.
//
// Interactive jobs go first; batch jobs only when no interactive job
// waits, and only into the slots interactive work leaves (see
// batchReserve).
func (d *Dispatcher) drain(t *tier, now time.Time, out []dispatch, fails []failed) ([]dispatch, []failed) {
	out, fails = d.drainQueue(t, &t.queue, now, out, fails)
	if t.queue.len() == 0 {
		out, fails = d.drainQueue(t, &t.batch, now, out, fails)
	}
	return out, fails
}

func (d *Dispatcher) drainQueue(t *tier, q *queue, now time.Time, out []dispatch, fails []failed) ([]dispatch, []failed) {
	if d.cfg.Strategy == config.ShortestExpectedDelay {
		return d.drainDelay(t, q, now, out, fails)
	}
	for q.len() > 0 {
		p := q.peek()
		if p.deadline.Before(now) {
			x := q.pop()
			fails = append(fails, failed{x.msg, schema.Errorf(schema.CodeTimeout, "no worker of tier %q was free before the job's deadline", t.name)})
			continue
		}
		w := d.pick(t, p, now)
		if w == nil {
			break
		}
		out = append(out, d.assign(t, w, q.pop(), now))
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
			// The connection's handlers belong to broker.Connect: a
			// reconnect is noticed here, by its count.
			if r := d.nc.Stats().Reconnects; r != d.reconnects {
				d.reconnects = r
				d.log.Info("connection reconnected: asking workers to announce themselves", "reconnects", r)
				d.relearn(now)
				d.announce()
			}
			out, fails = d.sweep(now, d.connectionAlive(now), out[:0], fails[:0])
			d.send(out, fails)
			clear(out)
			clear(fails)
		}
	}
}

// relearn follows a reconnect: the beats that did not reach this
// dispatcher while its connection was down say nothing about the workers,
// so each is given a fresh three intervals to be heard again, and tiers
// left without workers hold their jobs for StartupGrace, as at start,
// while the announce brings the fleet back.
func (d *Dispatcher) relearn(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.tiers {
		for _, w := range t.workers {
			w.lastSeen = now
		}
	}
	d.started = now
}

// connectionAlive reports whether workers that look silent may be taken
// for lost: only when this dispatcher's own connection is known to work.
// A connection to a frozen server (a partition) looks open until its
// pings go unanswered, and every beat stops reaching the dispatcher
// meanwhile: dropping workers then would re-run, or fail, jobs they have
// already answered. The round trip is made only when a worker looks
// silent, and outside the lock.
func (d *Dispatcher) connectionAlive(now time.Time) bool {
	d.mu.Lock()
	silent := false
	for _, t := range d.tiers {
		for _, w := range t.workers {
			if w.expired(now) {
				silent = true
				break
			}
		}
	}
	d.mu.Unlock()
	if !silent {
		return true
	}
	before := d.nc.Stats().Reconnects
	if err := d.nc.FlushTimeout(time.Second); err != nil {
		d.log.Warn("workers look silent but this dispatcher's connection does not answer: not dropping them", "err", err)
		return false
	}
	// A flush answered by a connection that reconnected meanwhile proves
	// nothing of the time before: the next sweep relearns the fleet first.
	return d.nc.Stats().Reconnects == before
}

func (d *Dispatcher) sweep(now time.Time, expire bool, out []dispatch, fails []failed) ([]dispatch, []failed) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.due = d.delayed.popDue(now, d.due[:0])
	for _, dj := range d.due {
		if t := d.tiers[dj.tier]; t != nil {
			*t.heldOf(&dj.job)--
			t.queueOf(&dj.job).pushFront(dj.job)
		}
	}
	clear(d.due)
	for name, t := range d.tiers {
		if d.forget(t, now) {
			delete(d.tiers, name)
			d.learned--
			d.names.dirty = true
			continue
		}
		for i := len(t.workers) - 1; i >= 0; i-- {
			if w := t.workers[i]; expire && w.expired(now) {
				d.log.Warn("worker lost: no heartbeat for three intervals", "worker", w.hb.Worker, "tier", t.name, "last_seen", w.lastSeen, "jobs_held", len(w.jobs))
				d.removeWorker(t, i)
				d.observeLost(t.name, w.hb.Worker)
				fails = d.requeueLost(t, w, now, fails)
			}
		}
		for _, q := range []*queue{&t.queue, &t.batch} {
			var expired []pending
			expired = q.removeExpired(now, expired)
			for _, p := range expired {
				fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeTimeout, "no worker of tier %q was free before the job's deadline", t.name)})
			}
			if len(t.workers) == 0 && q.len() > 0 && now.Sub(d.started) > d.cfg.StartupGrace {
				var stranded []pending
				stranded = q.drain(stranded)
				for _, p := range stranded {
					fails = append(fails, failed{p.msg, schema.Errorf(schema.CodeNoDeployments, "no worker serves tier %q", t.name)})
				}
			}
		}
		out, fails = d.answerRateBlocked(t, now, out, fails)
		out, fails = d.drain(t, now, out, fails)
	}
	return out, fails
}

// answerRateBlocked takes out of t's queues the jobs that cannot wait for
// room under the tier's usage limits: when every deployment is at its
// limit, a job whose deadline comes before the first has room falls back
// or is answered rate_limited with the time until then. Called with d.mu
// held.
func (d *Dispatcher) answerRateBlocked(t *tier, now time.Time, out []dispatch, fails []failed) ([]dispatch, []failed) {
	if t.queue.len()+t.batch.len() == 0 {
		return out, fails
	}
	blocked, frees := t.rateBlocked(now)
	if !blocked {
		return out, fails
	}
	for _, q := range []*queue{&t.queue, &t.batch} {
		var late []pending
		late = q.removeExpired(frees, late)
		for _, p := range late {
			if p.msg.Header.Get(schema.HeaderDisableFallbacks) != "true" {
				var ok bool
				if out, fails, ok = d.fallback(p, t.name, schema.CodeRateLimited, now, out, fails); ok {
					continue
				}
			}
			fails = append(fails, failed{p.msg, rateLimited(t.name, now, frees)})
		}
	}
	return out, fails
}

// pick chooses a worker of t with a free slot for p, or nil. Called with
// d.mu held.
func (d *Dispatcher) pick(t *tier, p *pending, now time.Time) *worker {
	w, _ := d.pickOrWait(t, p, now)
	return w
}

// pickOrWait is pick; when it returns no worker because p had better wait
// for a busy one (shortest-expected-delay), wait is that one. Called with
// d.mu held.
func (d *Dispatcher) pickOrWait(t *tier, p *pending, now time.Time) (w, wait *worker) {
	w, wait = d.choose(t, p, now)
	d.picked(w, now)
	return w, wait
}

// choose is pickOrWait but for noting the choice. Residency narrows the
// candidates first, so every strategy prefers hosts with the model
// loaded (residency.go).
func (d *Dispatcher) choose(t *tier, p *pending, now time.Time) (w, wait *worker) {
	if p != nil {
		p.sel.prepare(t, now)
	}
	d.cands = t.candidates(d.cands, p, now)
	defer clear(d.cands)
	cands := d.residency(t, d.cands, p, now)
	affinity := p != nil && p.key != 0 && len(cands) > 0
	if d.cfg.Strategy != config.ShortestExpectedDelay {
		if affinity {
			if a := t.affine(cands, p.key); a != nil {
				return a, nil
			}
		}
		return pick(d.cfg.Strategy, cands, d.rng, d.cfg.LatencyBuffer), nil
	}
	w, wait, delay := t.shortestDelay(cands, p, now, d.salt, d.cfg.ID, d.rng)
	if affinity {
		if a, aw, ok := t.stay(cands, p, now, delay); ok {
			return a, aw
		}
	}
	return w, wait
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

// clip bounds a string from a message for a log line.
func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
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
	ID         string `json:"id"`
	Strategy   string `json:"strategy"`
	Received   uint64 `json:"received"`
	Dispatched uint64 `json:"dispatched"`
	NoReply    uint64 `json:"no_reply"`
	// Retries, Fallbacks and Redispatched count jobs sent again after a
	// failure, to another tier, and after their worker was lost.
	Retries      uint64            `json:"retries"`
	Fallbacks    uint64            `json:"fallbacks"`
	Redispatched uint64            `json:"redispatched"`
	Errors       map[string]uint64 `json:"errors"`
	// Dropped counts hostile or malformed messages refused or repaired.
	Dropped Dropped     `json:"dropped"`
	Tiers   []TierStats `json:"tiers"`
}

// TierStats describe one tier as the dispatcher sees it.
type TierStats struct {
	Name string `json:"name"`
	// Queued are interactive jobs waiting: for a free worker, or for the
	// back-off of a retry to end (Retrying counts those, of both
	// priorities). Both count toward Config.MaxQueue.
	Queued int `json:"queued"`
	// BatchQueued are batch jobs waiting for capacity interactive jobs
	// leave (or for a retry's back-off).
	BatchQueued int                `json:"batch_queued"`
	Retrying    int                `json:"retrying"`
	Workers     []schema.Heartbeat `json:"workers"`
}

// Stats returns a snapshot of the dispatcher's counters and fleet.
func (d *Dispatcher) Stats() Stats {
	s := Stats{ID: d.cfg.ID, Strategy: d.cfg.Strategy, Received: d.received.Load(), Dispatched: d.dispatched.Load(), NoReply: d.noReply.Load(),
		Retries: d.retries.Load(), Fallbacks: d.fallbacks.Load(), Redispatched: d.redispatched.Load(), Errors: map[string]uint64{},
		Dropped: d.drops.snapshot()}
	d.errMu.Lock()
	for k, v := range d.errors {
		s.Errors[k] = v
	}
	d.errMu.Unlock()
	d.mu.Lock()
	for _, name := range d.tierNames() {
		t := d.tiers[name]
		ts := TierStats{Name: name, Queued: t.queue.len() + t.held, BatchQueued: t.batch.len() + t.heldBatch, Retrying: t.held + t.heldBatch}
		for _, w := range t.workers {
			ts.Workers = append(ts.Workers, w.hb)
		}
		slices.SortFunc(ts.Workers, func(a, b schema.Heartbeat) int { return strings.Compare(a.Worker, b.Worker) })
		s.Tiers = append(s.Tiers, ts)
	}
	d.mu.Unlock()
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
