package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// Config configures a worker. Conn, Tier and Provider are required; every
// other field has a working default.
type Config struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Subjects lays out subjects. Default prefix "llm".
	Subjects broker.Subjects
	// Tier is the model group the worker serves. Required.
	Tier string
	// Deployment id. Default: Tier.
	Deployment string
	// ID of this worker, unique in the fleet. Default: Deployment plus a
	// random suffix.
	ID string
	// Provider completes jobs. Required.
	Provider provider.Provider
	// ProviderName ("ollama", "gemini", "sim", ...) and Model are reported
	// in heartbeats and replies.
	ProviderName, Model string
	// Host is the backend's address, reported in heartbeats.
	Host string
	// Concurrency is how many jobs run at once, at most broker.MaxCapacity
	// (what a heartbeat may report). Default 4.
	Concurrency int
	// Backlog is how many more jobs may wait in the worker when dispatchers
	// send more than Concurrency (several dispatchers may each see the last
	// free slot). Beyond it a job is answered "overloaded". At most
	// broker.MaxCapacity. Default: Concurrency.
	Backlog int
	// HeartbeatInterval, within broker.MinBeatInterval…MaxBeatInterval
	// (receivers clamp a beat's interval to those bounds; a longer one is
	// shortened to match). Default 1 s.
	HeartbeatInterval time.Duration
	// StateInterval is the least time between the extra beats a worker sends
	// when a slot frees, so dispatchers learn of free capacity at once
	// without a beat per job. Default 2 ms.
	StateInterval time.Duration
	// Weight and Order are the deployment's routing hints (see
	// schema.Heartbeat).
	Weight float64
	Order  int
	// Timeout bounds a call when the job's deadline is later; StreamTimeout
	// a streamed one. Default 600 s; StreamTimeout defaults to Timeout.
	Timeout, StreamTimeout time.Duration
	// MaxTokens, when set, is the output limit of jobs that set none.
	MaxTokens int
	// Embedding makes the worker serve embedding jobs (a deployment of
	// model_info.mode embedding): Provider must then be a
	// provider.Embedder. A worker serves either embedding jobs or chat
	// jobs; the other kind is answered bad_request. Default: chat.
	Embedding bool
	// Limits bound what a job may carry (schema.Limits: the size of an
	// image given inline). Default: schema's defaults.
	Limits schema.Limits
	// LatencyWindow is how many recent calls latency figures come from.
	// Default 64.
	LatencyWindow int
	// Cooldown rests the deployment after failures (see Cooldown).
	Cooldown Cooldown
	// Router features (router.go): Tags go in heartbeats for tag routing;
	// MaxInputTokens, when set, is the window of pre-call checks;
	// MaxRetries is how many more times a failed call is made here before
	// the failure is reported; latency samples older than LatencyTTL are
	// forgotten (default 1 h).
	Tags           []string
	MaxInputTokens int
	MaxRetries     int
	LatencyTTL     time.Duration
	// InputCostPerToken and OutputCostPerToken (US dollars) price the
	// calls: each reply's routing block carries its cost_usd, and
	// heartbeats carry them for cost-based routing. Default 0 (no cost
	// reported).
	InputCostPerToken, OutputCostPerToken float64
	// RPM and TPM are the deployment's usage limits (LiteLLM's rpm and
	// tpm): the worker starts at most RPM calls, and calls of at most TPM
	// tokens, in any RateWindow, and refuses jobs over them (usage.go).
	// At most broker.MaxRate. Default 0: no limit.
	RPM, TPM int64
	// RateWindow is the window RPM and TPM count over, at most
	// broker.MaxRateWindow. Default DefaultRateWindow (a minute); tests
	// shorten it.
	RateWindow time.Duration
	// HostBudget, when set, is the slot budget this worker shares with
	// the other deployments of its host in this process (host.go).
	HostBudget *HostBudget
	// ResidencyInterval is how often a worker whose provider can tell
	// (provider.Resident: Ollama's /api/ps) asks its host which models
	// it has loaded; sooner after a call that found its model cold.
	// Default 2 s.
	ResidencyInterval time.Duration
	// WarmUp makes Start load the model on the host (provider.Warmer)
	// before the worker first beats, so it joins the fleet warm. Default
	// false.
	WarmUp bool
	// Observer, when set, is told of every job's end and every cooldown
	// (see Observer). Default none.
	Observer Observer
	// Inboxes, when set, are the reply subjects of producers in this
	// process (llmq up's gateway): a reply or error for one of them is
	// handed over in process instead of published (broker.ReplyVia).
	// Streams are always published. Default nil: every reply is
	// published.
	Inboxes *broker.Inboxes
	// NoService leaves out the NATS micro service the worker registers
	// (ServiceName; see startService). Default: registered.
	NoService bool
	// Version is reported to NATS micro: a semantic version, else "0.0.0".
	Version string
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Worker serves one deployment. Create it with New, run it with Start, end
// it with Stop.
type Worker struct {
	cfg      Config
	nc       *nats.Conn
	subject  string
	log      *slog.Logger
	streamer provider.Streamer
	embedder provider.Embedder
	window   *window
	rate     *rateWindow

	pool     runnerPool // guarded by mu
	inflight atomic.Int64
	done     atomic.Uint64
	failed   atomic.Uint64
	dropped  atomic.Uint64 // jobs that could not be answered at all
	// droppedCancels counts cancel messages naming no valid reply.
	droppedCancels atomic.Uint64
	cancels        cancels // cancellable jobs (schema.HeaderControl), see cancel.go
	cancelSub      *nats.Subscription
	dropLog        rateLimit
	seq            atomic.Uint64
	draining       atomic.Bool

	beatMu sync.Mutex // orders beats (see beat)

	mu      sync.Mutex
	senders map[string]*sender // per dispatcher id: what beats report (see senders.go)
	cool    cooldown
	sub     *nats.Subscription
	annSub  *nats.Subscription
	started bool
	stopped bool
	closed  bool // no more jobs are accepted
	// taking is set from Start until closed, read without the lock by Take.
	taking   atomic.Bool
	stopCh   chan struct{}
	beatNow  chan struct{}
	idle     chan struct{} // signalled when in-flight drops to zero
	cancel   context.CancelFunc
	ctx      context.Context
	wg       sync.WaitGroup
	beatWG   sync.WaitGroup
	inboxSub *nats.Subscription
	inbox    string
	streams  sync.Map // stream id -> context.CancelFunc
	svc      micro.Service
}

// New validates cfg and returns a worker.
func New(cfg Config) (*Worker, error) {
	if cfg.Conn == nil {
		return nil, errors.New("worker: Conn is required")
	}
	if cfg.Provider == nil {
		return nil, errors.New("worker: Provider is required")
	}
	if !broker.ValidGroup(cfg.Tier) {
		return nil, fmt.Errorf("worker: tier %q is not a valid tier name or wildcard pattern", cfg.Tier)
	}
	if cfg.Deployment == "" {
		cfg.Deployment = cfg.Tier
	}
	if cfg.ID == "" {
		const suffix = 7 // "-" and six characters of a nuid
		cfg.ID = broker.Token(cfg.Deployment)
		cfg.ID = cfg.ID[:min(len(cfg.ID), broker.MaxWorkerIDLen-suffix)] + "-" + nuid.Next()[16:]
	}
	if !broker.ValidWorkerID(cfg.ID) {
		return nil, fmt.Errorf("worker: id %q must be one subject token (letters, digits, - and _) of at most %d bytes", cfg.ID, broker.MaxWorkerIDLen)
	}
	// Dispatchers refuse a beat whose names or numbers are out of
	// broker's bounds (broker.DecodeHeartbeat): a worker that would send
	// one must not start, or it would serve nobody.
	for _, f := range []struct{ name, v string }{{"Deployment", cfg.Deployment}, {"ProviderName", cfg.ProviderName}, {"Model", cfg.Model}, {"Host", cfg.Host}} {
		if len(f.v) > broker.MaxNameLen {
			return nil, fmt.Errorf("worker: %s of %d bytes is over the %d a heartbeat may carry", f.name, len(f.v), broker.MaxNameLen)
		}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Concurrency > broker.MaxCapacity {
		return nil, fmt.Errorf("worker: concurrency %d is over the %d a heartbeat may report (broker.MaxCapacity)", cfg.Concurrency, broker.MaxCapacity)
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = cfg.Concurrency
	}
	if cfg.Backlog > broker.MaxCapacity {
		// Held jobs are listed in beats: at most 2 × MaxCapacity of them
		// stays within broker.MaxBeatJobs.
		return nil, fmt.Errorf("worker: backlog %d is over %d (broker.MaxCapacity)", cfg.Backlog, broker.MaxCapacity)
	}
	if math.IsNaN(cfg.Weight) || math.IsInf(cfg.Weight, 0) || cfg.Weight < 0 {
		return nil, fmt.Errorf("worker: weight %v must be a finite number, 0 or more", cfg.Weight)
	}
	if cfg.RPM < 0 || cfg.TPM < 0 || cfg.RPM > broker.MaxRate || cfg.TPM > broker.MaxRate {
		return nil, fmt.Errorf("worker: rpm %d and tpm %d must be within 0…%d", cfg.RPM, cfg.TPM, int64(broker.MaxRate))
	}
	if cfg.RateWindow <= 0 {
		cfg.RateWindow = DefaultRateWindow
	}
	if cfg.RateWindow > broker.MaxRateWindow {
		return nil, fmt.Errorf("worker: rate window %v is over %v (broker.MaxRateWindow)", cfg.RateWindow, broker.MaxRateWindow)
	}
	if math.IsNaN(cfg.InputCostPerToken) || math.IsNaN(cfg.OutputCostPerToken) || cfg.InputCostPerToken < 0 || cfg.OutputCostPerToken < 0 ||
		cfg.InputCostPerToken > broker.MaxCostPerToken || cfg.OutputCostPerToken > broker.MaxCostPerToken {
		return nil, fmt.Errorf("worker: costs per token %v and %v must be within 0…%v", cfg.InputCostPerToken, cfg.OutputCostPerToken, broker.MaxCostPerToken)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = time.Second
	}
	// Receivers clamp the interval a beat reports to these bounds and
	// drop a worker after three of them: beat at least that often.
	cfg.HeartbeatInterval = min(max(cfg.HeartbeatInterval, broker.MinBeatInterval), broker.MaxBeatInterval)
	if cfg.StateInterval <= 0 {
		cfg.StateInterval = 2 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = provider.DefaultTimeout
	}
	if cfg.StreamTimeout <= 0 {
		cfg.StreamTimeout = cfg.Timeout
	}
	if cfg.Embedding {
		if _, ok := cfg.Provider.(provider.Embedder); !ok {
			return nil, fmt.Errorf("worker: provider %q of deployment %s cannot embed (Embedding is set, the provider is no provider.Embedder)", cfg.ProviderName, cfg.Deployment)
		}
	}
	if cfg.LatencyWindow <= 0 {
		cfg.LatencyWindow = 64
	}
	if cfg.ResidencyInterval <= 0 {
		cfg.ResidencyInterval = DefaultResidencyInterval
	}
	if err := checkRouterConfig(&cfg); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Worker{
		cfg:     cfg,
		nc:      cfg.Conn,
		subject: cfg.Subjects.Worker(cfg.ID),
		log:     cfg.Logger.With("worker", cfg.ID, "tier", cfg.Tier),
		window:  newWindow(cfg.LatencyWindow, cfg.LatencyTTL),
		rate:    newRateWindow(cfg.RateWindow, cfg.RPM, cfg.TPM),
		pool:    runnerPool{limit: cfg.Concurrency},
		senders: map[string]*sender{},
		stopCh:  make(chan struct{}),
		beatNow: make(chan struct{}, 1),
		idle:    make(chan struct{}, 1),
	}
	w.streamer, _ = cfg.Provider.(provider.Streamer)
	w.embedder, _ = cfg.Provider.(provider.Embedder)
	return w, nil
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

// Subject returns the subject the worker takes jobs on.
func (w *Worker) Subject() string { return w.subject }

// Start subscribes and begins beating. The worker runs until Stop; ctx
// bounds only the start.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return errors.New("worker: already started")
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.warmUp(ctx) // before the worker takes jobs or beats
	w.firstResidency(ctx)
	sub, err := w.nc.Subscribe(w.subject, w.accept)
	if err != nil {
		return fmt.Errorf("worker: subscribe %s: %w", w.subject, err)
	}
	_ = sub.SetPendingLimits(-1, -1) // the jobs channel bounds the backlog
	ann, err := w.nc.Subscribe(w.cfg.Subjects.Announce(), func(*nats.Msg) { w.kick() })
	if err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("worker: subscribe %s: %w", w.cfg.Subjects.Announce(), err)
	}
	w.inbox = w.nc.NewRespInbox() + "s"
	inboxSub, err := w.nc.Subscribe(w.inbox+".*", w.streamControl)
	if err != nil {
		_ = sub.Unsubscribe()
		_ = ann.Unsubscribe()
		return fmt.Errorf("worker: subscribe stream inbox: %w", err)
	}
	cancelSub, err := w.nc.Subscribe(w.cfg.Subjects.CancelWildcard(), w.onCancel)
	if err != nil {
		_ = sub.Unsubscribe()
		_ = ann.Unsubscribe()
		_ = inboxSub.Unsubscribe()
		return fmt.Errorf("worker: subscribe %s: %w", w.cfg.Subjects.CancelWildcard(), err)
	}
	w.sub, w.annSub, w.inboxSub, w.cancelSub = sub, ann, inboxSub, cancelSub
	if err := w.startService(); err != nil {
		_ = sub.Unsubscribe()
		_ = ann.Unsubscribe()
		_ = inboxSub.Unsubscribe()
		_ = cancelSub.Unsubscribe()
		return err
	}
	if h := w.cfg.HostBudget; h != nil {
		h.join(w.kick)
	}
	if r, ok := w.cfg.Provider.(provider.Resident); ok {
		w.beatWG.Add(1)
		go w.residencyLoop(r)
	}
	w.beatWG.Add(1)
	go w.beatLoop()
	if err := broker.Flush(ctx, w.nc); err != nil {
		w.log.Warn("flush after subscribe", "err", err)
	}
	w.started = true
	w.taking.Store(true)
	w.log.Info("worker started", "subject", w.subject, "provider", w.cfg.ProviderName, "model", w.cfg.Model, "concurrency", w.cfg.Concurrency)
	return nil
}

// Stop drains the worker: it reports "draining" so dispatchers send no
// more jobs, finishes the jobs it holds, then says "stopped" and returns.
// When ctx ends first the remaining jobs are cancelled and each producer
// gets a typed error. Safe to call twice.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	if !w.started || w.stopped {
		w.mu.Unlock()
		return nil
	}
	w.stopped = true
	w.mu.Unlock()

	w.draining.Store(true)
	w.beat()
	// Jobs a dispatcher sent before it saw "draining" still arrive and are
	// served; wait until none is held.
	var err error
	for w.inflight.Load() > 0 {
		select {
		case <-w.idle:
		case <-ctx.Done():
			err = ctx.Err()
			w.cancel()
			w.log.Warn("drain deadline passed; cancelling in-flight jobs", "in_flight", w.inflight.Load())
			<-w.idle // cancelled jobs reply and finish promptly
		}
		if err != nil {
			break
		}
	}
	// Drain, not Unsubscribe: a job already buffered for the subscription
	// still reaches accept and is served.
	closedCh := w.sub.StatusChanged(nats.SubscriptionClosed)
	if derr := w.sub.Drain(); derr == nil {
		select {
		case <-closedCh:
		case <-time.After(5 * time.Second):
			w.log.Warn("job subscription did not drain in 5s")
		}
	}
	_ = w.annSub.Unsubscribe()
	w.mu.Lock()
	w.closed = true
	w.taking.Store(false)
	w.mu.Unlock()
	close(w.stopCh)
	w.beatWG.Wait()
	w.wg.Wait()
	_ = w.inboxSub.Unsubscribe()
	_ = w.cancelSub.Unsubscribe()
	w.cancel()
	w.final()
	w.stopService()
	if ferr := w.nc.Flush(); ferr != nil && err == nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
		err = ferr
	}
	w.log.Info("worker stopped", "completed", w.done.Load(), "failed", w.failed.Load())
	return err
}

// accept runs on the subscription's goroutine: count, then hand the job to
// a runner without blocking. Anyone may publish on the worker's subject:
// a job whose reply subject cannot be answered is dropped before it takes
// a slot (see drop), and its headers touch only bounded state (receive).
func (w *Worker) accept(m *nats.Msg) {
	if err := w.cfg.Subjects.CheckReply(m.Reply); err != nil {
		w.drop(m, err)
		return
	}
	d, seq, wait := jobKey(m)
	now := time.Now()
	w.mu.Lock()
	closed := w.closed
	var full, shared bool
	if !closed {
		// The running jobs are held too: the limit is on all of them, not
		// only on those waiting for a runner.
		if w.inflight.Load() < int64(w.cfg.Concurrency+w.cfg.Backlog) {
			w.inflight.Add(1)
			w.rate.take()
			q := queued{m: m, from: d}
			q.seq, q.tracked = w.receive(d, seq, wait, true, now)
			shared = len(w.senders) > 1
			if r, start := w.pool.give(q); start {
				w.start(r, q)
			}
		} else {
			full = true
		}
	}
	if closed || full {
		// Answered at once: received, and not held.
		w.receive(d, seq, wait, false, now)
	}
	w.mu.Unlock()
	switch {
	case shared:
		// Several dispatchers send here, and each knows only its own
		// jobs since the last beat: an early beat tells the others the
		// slot this job took is no longer free, before they fill it too
		// and one job waits behind a whole call.
		w.kick()
	case closed:
		w.reject(m, schema.NewError(schema.CodeNoDeployments, "worker "+w.cfg.ID+" has stopped"))
	case full:
		w.kick() // the dispatcher's view of the worker is out of date
		w.reject(m, schema.NewError(schema.CodeOverloaded, "worker "+w.cfg.ID+" is full: more jobs than its concurrency and backlog").WithRetryAfter(100*time.Millisecond))
	}
}

// reject answers a job the worker will not run.
func (w *Worker) reject(m *nats.Msg, e *schema.Error) {
	w.jobFailed(e.Code)
	_ = broker.ReplyErrorVia(w.cfg.Inboxes, w.nc, m.Reply, broker.CodecOf(m), e)
}

// finish marks one job done and tells dispatchers a slot is free.
func (w *Worker) finish() {
	if w.inflight.Add(-1) == 0 {
		select {
		case w.idle <- struct{}{}:
		default:
		}
	}
	w.kick()
}

// kick asks the beat loop for an early beat.
func (w *Worker) kick() {
	select {
	case w.beatNow <- struct{}{}:
	default:
	}
}
