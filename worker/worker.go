package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
	// Concurrency is how many jobs run at once. Default 4.
	Concurrency int
	// Backlog is how many more jobs may wait in the worker when dispatchers
	// send more than Concurrency (several dispatchers may each see the last
	// free slot). Beyond it a job is answered "overloaded". Default:
	// Concurrency.
	Backlog int
	// HeartbeatInterval. Default 1 s.
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
	// LatencyWindow is how many recent calls latency figures come from.
	// Default 64.
	LatencyWindow int
	// Cooldown rests the deployment after failures (see Cooldown).
	Cooldown Cooldown
	// InputCostPerToken and OutputCostPerToken (US dollars) price the
	// calls: each reply's routing block carries its cost_usd. Default 0
	// (no cost reported).
	InputCostPerToken, OutputCostPerToken float64
	// Observer, when set, is told of every job's end and every cooldown
	// (see Observer). Default none.
	Observer Observer
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
	window   *window

	jobs     chan *nats.Msg
	inflight atomic.Int64
	done     atomic.Uint64
	failed   atomic.Uint64
	seq      atomic.Uint64
	draining atomic.Bool

	beatMu sync.Mutex // orders beats (see beat)

	mu       sync.Mutex
	received map[string]uint64            // per dispatcher: the highest Llmq-Job-Seq received
	held     map[string]map[uint64]string // per dispatcher: the seqs held (value unused but for debugging: subject)
	cool     cooldown
	sub      *nats.Subscription
	annSub   *nats.Subscription
	started  bool
	stopped  bool
	closed   bool // no more jobs are accepted
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
	if !broker.ValidTier(cfg.Tier) {
		return nil, fmt.Errorf("worker: tier %q is not a valid subject suffix", cfg.Tier)
	}
	if cfg.Deployment == "" {
		cfg.Deployment = cfg.Tier
	}
	if cfg.ID == "" {
		cfg.ID = broker.Token(cfg.Deployment) + "-" + nuid.Next()[16:]
	}
	if broker.Token(cfg.ID) != cfg.ID {
		return nil, fmt.Errorf("worker: id %q must be one subject token (letters, digits, - and _)", cfg.ID)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = cfg.Concurrency
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = time.Second
	}
	if cfg.StateInterval <= 0 {
		cfg.StateInterval = 2 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = provider.DefaultTimeout
	}
	if cfg.StreamTimeout <= 0 {
		cfg.StreamTimeout = cfg.Timeout
	}
	if cfg.LatencyWindow <= 0 {
		cfg.LatencyWindow = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Worker{
		cfg:      cfg,
		nc:       cfg.Conn,
		subject:  cfg.Subjects.Worker(cfg.ID),
		log:      cfg.Logger.With("worker", cfg.ID, "tier", cfg.Tier),
		window:   newWindow(cfg.LatencyWindow),
		jobs:     make(chan *nats.Msg, cfg.Concurrency+cfg.Backlog),
		received: map[string]uint64{},
		held:     map[string]map[uint64]string{},
		stopCh:   make(chan struct{}),
		beatNow:  make(chan struct{}, 1),
		idle:     make(chan struct{}, 1),
	}
	w.streamer, _ = cfg.Provider.(provider.Streamer)
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
	w.sub, w.annSub, w.inboxSub = sub, ann, inboxSub
	if err := w.startService(); err != nil {
		_ = sub.Unsubscribe()
		_ = ann.Unsubscribe()
		_ = inboxSub.Unsubscribe()
		return err
	}
	for range w.cfg.Concurrency {
		w.wg.Add(1)
		go w.run()
	}
	w.beatWG.Add(1)
	go w.beatLoop()
	if err := broker.Flush(ctx, w.nc); err != nil {
		w.log.Warn("flush after subscribe", "err", err)
	}
	w.started = true
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
	w.mu.Unlock()
	close(w.stopCh)
	w.beatWG.Wait()
	w.wg.Wait()
	_ = w.inboxSub.Unsubscribe()
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
// a runner without blocking.
func (w *Worker) accept(m *nats.Msg) {
	w.mu.Lock()
	d, seq := jobKey(m)
	if d != "" {
		if seq == 0 {
			seq = w.received[d] + 1
		}
		w.received[d] = max(w.received[d], seq)
	}
	closed := w.closed
	var full bool
	if !closed {
		// The running jobs are held too: the limit is on all of them, not
		// only on those waiting in the channel. Only accept adds to
		// inflight, under w.mu, so the channel (which holds no more than
		// the jobs in flight) always has room.
		if w.inflight.Load() < int64(w.cfg.Concurrency+w.cfg.Backlog) {
			w.inflight.Add(1)
			if d != "" {
				if w.held[d] == nil {
					w.held[d] = map[uint64]string{}
				}
				w.held[d][seq] = ""
			}
			w.jobs <- m
		} else {
			full = true
		}
	}
	w.mu.Unlock()
	switch {
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
	if m.Reply != "" {
		_ = broker.ReplyError(w.nc, m.Reply, broker.CodecOf(m), e)
	}
}

func (w *Worker) run() {
	defer w.wg.Done()
	for {
		select {
		case m := <-w.jobs:
			w.handle(m)
			w.release(m)
		case <-w.stopCh:
			// Stop has closed the door; serve what got in before it did.
			for {
				select {
				case m := <-w.jobs:
					w.handle(m)
					w.release(m)
				default:
					return
				}
			}
		}
	}
}

// release forgets a finished job and frees its slot.
func (w *Worker) release(m *nats.Msg) {
	if d, seq := jobKey(m); d != "" {
		w.mu.Lock()
		if h := w.held[d]; h != nil {
			delete(h, seq)
			if len(h) == 0 {
				delete(w.held, d)
			}
		}
		w.mu.Unlock()
	}
	w.finish()
}

// jobKey returns the dispatcher that sent m and the job's number from it.
func jobKey(m *nats.Msg) (string, uint64) {
	if m.Header == nil {
		return "", 0
	}
	d := m.Header.Get(schema.HeaderDispatcher)
	seq, _ := strconv.ParseUint(m.Header.Get(schema.HeaderJobSeq), 10, 64)
	return d, seq
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
