package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

// RunnerConfig configures a Runner. Only Conn is required.
type RunnerConfig struct {
	// Conn is the NATS connection. Required; JetStream must be on.
	Conn *nats.Conn
	// Subjects lays out subjects. Default prefix "llm".
	Subjects broker.Subjects
	// Store says how missing streams are created (replicas, max age).
	Store StoreConfig
	// ID names the runner in reports. Default "br-" plus a random suffix.
	ID string
	// Concurrency, when set, is how many jobs of each tier this runner
	// runs at once. Default 0: adaptive, twice the slots the tier's live
	// workers leave to batch jobs (their capacity less the one slot each
	// keeps for interactive jobs), from heartbeats; no job of a tier runs
	// while it has no live worker.
	Concurrency int
	// MaxDeliver is how many times a job is tried before its failure
	// (retryable errors every time, or runners lost while holding it)
	// becomes its result. Default 10.
	MaxDeliver int
	// AckWait is how long a job may go unacknowledged before JetStream
	// gives it to another runner; a runner holding a job confirms it is
	// still working every AckWait/3. Default 30 s.
	AckWait time.Duration
	// JobTimeout bounds one attempt of a job (its deadline). Default 10 min.
	JobTimeout time.Duration
	// Backoff is the wait before a job that failed with a retryable error
	// is tried again; it doubles per delivery, with ±50% jitter, up to a
	// minute (github.com/cenkalti/backoff/v4 computes it), and is at least
	// the error's retry-after. Default 1 s.
	Backoff time.Duration
	// FetchWait is how long one pull waits for jobs. Default 1 s.
	FetchWait time.Duration
	// MaxInFlight caps the jobs this runner runs at once, all tiers
	// together, whatever the heartbeats claim. Default 4096.
	MaxInFlight int
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Runner takes batch jobs from JetStream and runs them through the
// dispatchers as batch-priority jobs, storing one result per job. Create
// it with NewRunner, run it with Start, end it with Stop.
type Runner struct {
	cfg RunnerConfig
	nc  *nats.Conn
	log *slog.Logger
	cli *client.Client

	st      *store
	hbSub   *nats.Subscription
	infoSub *nats.Subscription

	ctx    context.Context // cancelled when Stop gives up waiting
	cancel context.CancelFunc
	stopCh chan struct{}
	loops  sync.WaitGroup
	jobs   sync.WaitGroup

	mu        sync.Mutex
	started   bool
	stopped   bool
	workers   map[string]workerBeat
	tiers     map[string]*tierLoop
	inflight  map[string]*flight
	running   map[string]int
	metaCache map[string]metaEntry
	total     int // jobs running, all tiers

	completed    atomic.Uint64
	droppedBeats atomic.Uint64
	droppedMsgs  atomic.Uint64
	lastLog      atomic.Int64
	lastDropLog  atomic.Int64
}

// Bounds on what heartbeats can make a runner hold. Any client of the NATS
// server can publish a heartbeat: a beat that would go over a cap is
// dropped and counted (RunnerReport.DroppedBeats).
const (
	// MaxWorkers is the most workers a runner follows.
	MaxWorkers = 4096
	// MaxTiers is the most tiers a runner runs at once (a loop, and a
	// durable consumer once the tier has jobs, each).
	MaxTiers = 256
	// maxFetch bounds one pull: the client library allocates a buffer of
	// the pull's size up front.
	maxFetch = 256
)

// workerBeat is what the runner keeps of a worker's last heartbeat.
type workerBeat struct {
	tier     string
	ready    bool
	capacity int
	expires  time.Time
}

type metaEntry struct {
	cancelled bool
	at        time.Time
}

type tierLoop struct {
	name     string
	inflight int
	wake     chan struct{}
	quit     chan struct{} // closed when the tier's workers are all gone
	idle     time.Duration // the wait between looks for a first job
}

// flight is a job being run; extra deliveries of the same job that reach
// this runner meanwhile wait on it instead of running it again.
type flight struct {
	msgs []jetstream.Msg
}

// NewRunner validates cfg and returns a runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Conn == nil {
		return nil, errors.New("batch runner: Conn is required")
	}
	if cfg.ID == "" {
		cfg.ID = "br-" + nuid.Next()[14:]
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 10
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 10 * time.Minute
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.FetchWait <= 0 {
		cfg.FetchWait = time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Runner{
		cfg: cfg, nc: cfg.Conn, log: cfg.Logger.With("component", "batch-runner", "runner", cfg.ID),
		cli:      client.New(cfg.Conn, client.Config{Subjects: cfg.Subjects, Priority: schema.PriorityBatch, Timeout: cfg.JobTimeout}),
		stopCh:   make(chan struct{}),
		workers:  map[string]workerBeat{},
		tiers:    map[string]*tierLoop{},
		inflight: map[string]*flight{},
		running:  map[string]int{}, metaCache: map[string]metaEntry{},
	}, nil
}

// ID returns the runner's id.
func (r *Runner) ID() string { return r.cfg.ID }

// Start creates the streams when missing and starts taking jobs of every
// tier whose workers beat.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("batch runner: already started")
	}
	r.started = true
	r.mu.Unlock()
	js, err := jetstream.New(r.nc)
	if err != nil {
		return fmt.Errorf("batch runner: %w", err)
	}
	st, err := openStore(ctx, js, newNames(r.cfg.Subjects), r.cfg.Store)
	if err != nil {
		return err
	}
	r.st = st
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if r.infoSub, err = r.nc.Subscribe(st.runners(), r.onInfo); err != nil {
		return fmt.Errorf("batch runner: %w", err)
	}
	if r.hbSub, err = r.nc.Subscribe(r.cfg.Subjects.HeartbeatWildcard(), r.onHeartbeat); err != nil {
		_ = r.infoSub.Unsubscribe()
		return fmt.Errorf("batch runner: %w", err)
	}
	// Once Start returns the server has the subscriptions: a status
	// request sent right after is answered, not met with "no responders".
	if err := broker.Flush(ctx, r.nc); err != nil {
		_ = r.infoSub.Unsubscribe()
		_ = r.hbSub.Unsubscribe()
		return fmt.Errorf("batch runner: %w", err)
	}
	// Ask workers to beat now rather than at their next interval.
	_ = r.nc.Publish(r.cfg.Subjects.Announce(), nil)
	r.loops.Go(r.sweep)
	r.loops.Go(r.watchMeta)
	r.log.Info("batch runner started", "concurrency", r.cfg.Concurrency, "max_deliver", r.cfg.MaxDeliver)
	return nil
}

// Stop stops taking jobs and waits, bounded by ctx, for the running ones
// to finish and store their results; jobs still running when ctx ends are
// handed back to JetStream to run again. Safe to call twice.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped || !r.started || r.cancel == nil {
		r.stopped = true
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	close(r.stopCh)
	r.mu.Unlock()
	_ = r.hbSub.Unsubscribe()
	_ = r.infoSub.Unsubscribe()
	r.loops.Wait()
	done := make(chan struct{})
	go func() { r.jobs.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("batch runner: stop: %w", ctx.Err())
	}
	r.cancel()
	<-done
	return err
}

func (r *Runner) stopping() bool {
	select {
	case <-r.stopCh:
		return true
	default:
		return false
	}
}

// onHeartbeat learns the fleet's capacity and starts a loop per tier.
// Beats are untrusted: broker.DecodeHeartbeat checks and clamps them, and
// the workers and tiers they can add are capped.
func (r *Runner) onHeartbeat(m *nats.Msg) {
	now := time.Now()
	hb, err := r.cfg.Subjects.DecodeHeartbeat(m.Subject, m.Data, now)
	if err != nil {
		r.drop(&r.droppedBeats, "batch runner: heartbeat dropped", "err", err)
		return
	}
	if reason, args := r.beat(hb, now); reason != "" {
		r.drop(&r.droppedBeats, reason, args...)
	}
}

// beat records hb; it returns why it was dropped, if it was.
func (r *Runner) beat(hb schema.Heartbeat, now time.Time) (dropped string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return "", nil
	}
	if hb.State == schema.StateStopped {
		if w, ok := r.workers[hb.Worker]; ok {
			delete(r.workers, hb.Worker)
			r.tierLeftLocked(w.tier)
		}
		return "", nil
	}
	prev, known := r.workers[hb.Worker]
	t := r.tiers[hb.Tier]
	switch {
	case !known && len(r.workers) >= MaxWorkers:
		return "batch runner: heartbeat dropped: too many workers", []any{"worker", hb.Worker, "max", MaxWorkers}
	case t == nil && len(r.tiers) >= MaxTiers:
		return "batch runner: heartbeat dropped: too many tiers", []any{"tier", hb.Tier, "max", MaxTiers}
	}
	r.workers[hb.Worker] = workerBeat{tier: hb.Tier, ready: hb.State == schema.StateReady, capacity: hb.Capacity,
		expires: now.Add(3 * time.Duration(hb.IntervalMs) * time.Millisecond)}
	if known && prev.tier != hb.Tier {
		r.tierLeftLocked(prev.tier)
	}
	if t == nil {
		t = &tierLoop{name: hb.Tier, wake: make(chan struct{}, 1), quit: make(chan struct{})}
		r.tiers[hb.Tier] = t
		r.loops.Go(func() { r.runTier(t) })
	}
	t.poke()
	return "", nil
}

// tierLeftLocked ends the loop of tier when none of its workers is left
// and none of its jobs runs; a later beat starts it again. Called with r.mu
// held.
func (r *Runner) tierLeftLocked(tier string) {
	t := r.tiers[tier]
	if t == nil {
		return
	}
	t.poke()
	if t.inflight > 0 {
		return // checked again when they end
	}
	for _, w := range r.workers {
		if w.tier == tier {
			return
		}
	}
	delete(r.tiers, tier)
	close(t.quit)
}

// drop counts a refused message and logs it, at most a line per few
// seconds.
func (r *Runner) drop(counter *atomic.Uint64, msg string, args ...any) {
	counter.Add(1)
	now := time.Now().UnixNano()
	last := r.lastDropLog.Load()
	if now-last < int64(5*time.Second) || !r.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	r.log.Warn(msg, append(args, "dropped_beats", r.droppedBeats.Load(), "dropped_jobs", r.droppedMsgs.Load())...)
}

func (t *tierLoop) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// sweep forgets workers that stopped beating, and batch states cached
// past their use.
func (r *Runner) sweep() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.stopCh:
			return
		case now := <-tick.C:
			r.mu.Lock()
			for id, w := range r.workers {
				if now.After(w.expires) {
					delete(r.workers, id)
					r.tierLeftLocked(w.tier)
				}
			}
			for id, e := range r.metaCache {
				if now.Sub(e.at) >= metaTTL {
					delete(r.metaCache, id)
				}
			}
			r.mu.Unlock()
		}
	}
}

// window is how many jobs of tier t may run at once, at most
// MaxInFlight. Called with r.mu.
func (r *Runner) window(tier string) int {
	if r.cfg.Concurrency > 0 {
		return min(r.cfg.Concurrency, r.cfg.MaxInFlight)
	}
	n := 0
	for _, w := range r.workers {
		if w.tier != tier || !w.ready {
			continue
		}
		reserve := 0
		if w.capacity > 1 {
			reserve = 1 // the dispatcher keeps it for interactive jobs
		}
		n += max(0, w.capacity-reserve)
		if 2*n >= r.cfg.MaxInFlight {
			return r.cfg.MaxInFlight
		}
	}
	return 2 * n
}

// runTier pulls the tier's jobs while it has room for them.
func (r *Runner) runTier(t *tierLoop) {
	var cons jetstream.Consumer
	for !r.stopping() && !t.quitting() {
		r.mu.Lock()
		free := min(r.window(t.name)-t.inflight, r.cfg.MaxInFlight-r.total, maxFetch)
		r.mu.Unlock()
		if free <= 0 {
			select {
			case <-t.wake:
			case <-t.quit:
			case <-r.stopCh:
			}
			continue
		}
		if cons == nil && !r.hasJobs(t) {
			continue
		}
		if cons == nil {
			c, err := r.st.jobs.CreateOrUpdateConsumer(r.ctx, jetstream.ConsumerConfig{
				Durable: r.st.consumerName(t.name), Description: "llmq batch runners, tier " + t.name,
				FilterSubject: r.st.jobsOfTier(t.name), AckPolicy: jetstream.AckExplicitPolicy,
				AckWait: r.cfg.AckWait, MaxDeliver: -1, MaxAckPending: 20000, DeliverPolicy: jetstream.DeliverAllPolicy,
			})
			if err != nil {
				r.logErr("batch runner: consumer", err, "tier", t.name)
				r.pause(time.Second)
				continue
			}
			cons = c
		}
		mb, err := cons.Fetch(free, jetstream.FetchMaxWait(r.cfg.FetchWait))
		if err != nil {
			r.logErr("batch runner: fetch", err, "tier", t.name)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				cons = nil
			}
			r.pause(500 * time.Millisecond)
			continue
		}
		for m := range mb.Messages() {
			r.mu.Lock()
			t.inflight++
			r.total++
			r.mu.Unlock()
			r.jobs.Go(func() {
				r.handle(m)
				r.mu.Lock()
				t.inflight--
				full := r.total >= r.cfg.MaxInFlight
				r.total--
				if t.inflight == 0 {
					r.tierLeftLocked(t.name)
				}
				if full {
					// Other tiers may wait for room under MaxInFlight.
					for _, o := range r.tiers {
						o.poke()
					}
				}
				r.mu.Unlock()
				t.poke()
			})
		}
		if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			r.logErr("batch runner: fetch", err, "tier", t.name)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				cons = nil
			}
			r.pause(500 * time.Millisecond)
		}
	}
}

func (t *tierLoop) quitting() bool {
	select {
	case <-t.quit:
		return true
	default:
		return false
	}
}

// hasJobs reports whether the tier has jobs in the stream, waiting when it
// has none (FetchWait, doubling to 4 FetchWaits while none comes): a tier
// that only heartbeats named gets no durable consumer on the server until
// a job of it is submitted, and hundreds of such tiers cost a look each
// few seconds.
func (r *Runner) hasJobs(t *tierLoop) bool {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	_, err := r.st.jobs.GetLastMsgForSubject(ctx, r.st.jobsOfTier(t.name))
	cancel()
	if err == nil {
		return true
	}
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		r.logErr("batch runner: look for jobs", err, "tier", t.name)
	}
	t.idle = min(max(2*t.idle, r.cfg.FetchWait), 4*r.cfg.FetchWait)
	select {
	case <-time.After(t.idle):
	case <-t.quit:
	case <-r.stopCh:
	}
	return false
}

func (r *Runner) pause(d time.Duration) {
	select {
	case <-time.After(d):
	case <-r.stopCh:
	}
}

// logErr logs at most one error a second, so a NATS outage does not flood.
func (r *Runner) logErr(msg string, err error, args ...any) {
	now := time.Now().UnixNano()
	last := r.lastLog.Load()
	if now-last < int64(time.Second) || !r.lastLog.CompareAndSwap(last, now) {
		return
	}
	r.log.Warn(msg, append(args, "err", err)...)
}

// metaTTL is how long a batch's cancelled state is taken from the cache.
const metaTTL = time.Second

// checkJob checks that a job's headers are what Submit writes: a valid
// batch id, custom_id and tier, that name the subject the job is on. Any
// client allowed to publish jobs could write anything there, and the
// result's subject is made of them.
func (r *Runner) checkJob(subj string, batchID, customID, tier string) error {
	switch {
	case !ValidID(batchID):
		return fmt.Errorf("batch id %.64q is not valid", batchID)
	case customID == "" || len(customID) > MaxCustomIDLen:
		return fmt.Errorf("custom_id of %d bytes: want 1 to %d", len(customID), MaxCustomIDLen)
	case !broker.ValidTier(tier):
		return fmt.Errorf("tier %.64q is not valid", tier)
	case subj != r.st.jobSubject(batchID, customID, tier):
		return fmt.Errorf("headers do not name the job's subject %.128q", subj)
	}
	return nil
}

// handle runs one delivered job to a stored result, or hands it back.
func (r *Runner) handle(m jetstream.Msg) {
	h := m.Headers()
	batchID, customID, tier := h.Get(HeaderBatchID), h.Get(HeaderCustomID), h.Get(HeaderBatchTier)
	subj := m.Subject()
	if err := r.checkJob(subj, batchID, customID, tier); err != nil {
		// Not a job Submit wrote: never run, never delivered again.
		r.drop(&r.droppedMsgs, "batch runner: job dropped", "subject", truncate(subj, 128), "err", err)
		_ = m.Term()
		return
	}
	r.mu.Lock()
	if f := r.inflight[subj]; f != nil {
		// Redelivered while we still run it (JetStream lost our progress
		// acks, say through a NATS restart): ack it with the first.
		f.msgs = append(f.msgs, m)
		r.mu.Unlock()
		return
	}
	f := &flight{msgs: []jetstream.Msg{m}}
	r.inflight[subj] = f
	r.running[batchID]++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.inflight, subj)
		if r.running[batchID]--; r.running[batchID] <= 0 {
			delete(r.running, batchID)
		}
		r.mu.Unlock()
	}()
	ack := func() {
		r.mu.Lock()
		msgs := f.msgs
		r.mu.Unlock()
		for _, m := range msgs {
			ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
			_ = m.DoubleAck(ctx)
			cancel()
		}
	}
	nak := func(d time.Duration) {
		r.mu.Lock()
		msgs := f.msgs
		r.mu.Unlock()
		for _, m := range msgs {
			_ = m.NakWithDelay(d)
		}
	}
	md, err := m.Metadata()
	if err != nil {
		_ = m.Term()
		return
	}
	cancelled, err := r.cancelled(batchID)
	if err != nil {
		nak(r.cfg.Backoff)
		return
	}
	if cancelled {
		ack()
		return
	}
	rsubj := r.st.resultSubject(batchID, customID)
	if stored, failed, err := r.resultStored(rsubj); err != nil {
		nak(r.cfg.Backoff)
		return
	} else if stored {
		if failed {
			r.markFailed(batchID, customID)
		}
		ack()
		return
	}
	var res *Result
	if md.NumDelivered > uint64(r.cfg.MaxDeliver) {
		res = deadLetter(customID, fmt.Sprintf("delivered %d times without a result (runners lost while holding it)", md.NumDelivered-1), nil)
	} else if req, err := schema.DecodeRequest(schema.JSON, m.Data()); err != nil {
		res = errorResult(customID, schema.AsError(err))
	} else {
		var retry bool
		var delay time.Duration
		res, retry, delay = r.run(f, tier, req, md.NumDelivered)
		if r.ctx.Err() != nil {
			nak(0) // stopping: let another runner have it now
			return
		}
		if retry {
			nak(delay)
			return
		}
	}
	res.CustomID = customID
	if !r.store(rsubj, batchID, customID, res) {
		return // not stored (stopping, NATS gone): JetStream delivers it again
	}
	if res.Failed() {
		r.markFailed(batchID, customID)
	}
	r.completed.Add(1)
	ack()
}

// run sends the job through the dispatchers, keeping the delivery alive.
func (r *Runner) run(f *flight, tier string, req *schema.Request, delivered uint64) (res *Result, retry bool, delay time.Duration) {
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.JobTimeout)
	defer cancel()
	keep := make(chan struct{})
	var kwg sync.WaitGroup
	kwg.Go(func() {
		t := time.NewTicker(r.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-keep:
				return
			case <-t.C:
				r.mu.Lock()
				msgs := f.msgs
				r.mu.Unlock()
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	})
	var resp any
	var err error
	if req.IsEmbedding() {
		var er *schema.EmbeddingResponse
		if er, err = r.cli.Embed(ctx, tier, req); err == nil {
			for i := range er.Data {
				er.Data[i].Embedding.Encode(req.EncodingFormat) // decoding read base64 into floats
			}
			resp = er
		}
	} else {
		resp, err = r.cli.Complete(ctx, tier, req)
	}
	close(keep)
	kwg.Wait()
	if err == nil {
		body, _ := json.Marshal(resp)
		id := nuid.Next()
		return &Result{ID: "batch_req_" + id, Response: &ResultResponse{StatusCode: 200, RequestID: "req_" + id, Body: body}}, false, 0
	}
	var e *schema.Error
	if !errors.As(err, &e) {
		// Not an answer from the fleet: NATS trouble on our side.
		e = schema.Errorf(schema.CodeConnection, "%v", err)
	}
	if !batchRetryable(e) {
		return errorResult("", e), false, 0
	}
	if delivered >= uint64(r.cfg.MaxDeliver) {
		return deadLetter("", fmt.Sprintf("failed %d times; last: %s", delivered, e.Message), e), false, 0
	}
	return nil, true, redeliveryDelay(r.cfg.Backoff, delivered, e.RetryAfter())
}

// maxRedeliveryDelay bounds redeliveryDelay but for the retry-after floor.
const maxRedeliveryDelay = time.Minute

// redeliveryDelay is the wait before delivery number delivered+1 of a job
// whose delivery number delivered failed with a retryable error, computed
// by github.com/cenkalti/backoff/v4: exponential from base, doubling, with
// the library's ±50% jitter around each step, and at most a minute; never
// below retryAfter (the error's retry-after wins over the minute).
func redeliveryDelay(base time.Duration, delivered uint64, retryAfter time.Duration) time.Duration {
	base = min(max(base, time.Millisecond), maxRedeliveryDelay)
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(base),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxInterval(maxRedeliveryDelay),
		backoff.WithMaxElapsedTime(0), // MaxDeliver bounds redeliveries
	)
	d := base
	// The interval stops growing at a minute: no need to step further than
	// the doublings that take it there.
	for range min(max(delivered, 1), 64) {
		d = b.NextBackOff()
	}
	return max(min(d, maxRedeliveryDelay), retryAfter)
}

// batchRetryable: what schema calls retryable, and also a worker stopped
// mid-job (cancelled) and a tier the dispatcher does not know yet (it
// learns tiers from heartbeats; the runner only runs tiers that beat).
func batchRetryable(e *schema.Error) bool {
	switch e.Code {
	case schema.CodeCancelled, schema.CodeUnknownTier, schema.CodeCoolingDown:
		return true
	}
	return e.Retryable()
}

func errorResult(customID string, e *schema.Error) *Result {
	body, _ := json.Marshal(map[string]*schema.Error{"error": e})
	id := nuid.Next()
	return &Result{ID: "batch_req_" + id, CustomID: customID, Response: &ResultResponse{StatusCode: e.Status, RequestID: "req_" + id, Body: body}}
}

func deadLetter(customID, msg string, last *schema.Error) *Result {
	var res *Result
	if last != nil {
		res = errorResult(customID, last)
	} else {
		res = &Result{ID: "batch_req_" + nuid.Next(), CustomID: customID}
	}
	res.Error = &ResultError{Code: "max_deliver", Message: msg}
	return res
}

// store persists res as the job's one result, retrying through NATS
// trouble until the runner stops. It reports whether a result is stored
// (this one, or one another runner stored first).
func (r *Runner) store(subj, batchID, customID string, res *Result) bool {
	data, _ := json.Marshal(res)
	status := "ok"
	if res.Failed() {
		status = "error"
	}
	for try := 0; ; try++ {
		m := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{
			HeaderBatchID: {batchID}, HeaderCustomID: {customID}, HeaderResultStatus: {status}, "Content-Type": {"application/json"},
		}}
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		_, err := r.st.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0))
		cancel()
		if err == nil || isDuplicate(err) {
			return true
		}
		if r.ctx.Err() != nil || r.nc.IsClosed() {
			return false
		}
		r.logErr("batch runner: store result", err, "batch", batchID)
		select {
		case <-time.After(min(time.Duration(try+1)*200*time.Millisecond, 2*time.Second)):
		case <-r.ctx.Done():
			return false
		}
	}
}

// markFailed records that the job's result is an error (for counts).
func (r *Runner) markFailed(batchID, customID string) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	_, err := r.st.js.PublishMsg(ctx, &nats.Msg{Subject: r.st.failedSubject(batchID, customID), Header: nats.Header{HeaderCustomID: {customID}}},
		jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil && !isDuplicate(err) {
		r.logErr("batch runner: count failure", err, "batch", batchID)
	}
}

// resultStored reports whether subj holds a result, and whether it is an
// error.
func (r *Runner) resultStored(subj string) (stored, failed bool, err error) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	msg, err := r.st.results.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, msg.Header.Get(HeaderResultStatus) == "error", nil
}

// cancelled reports whether the batch is cancelled, from a cache kept one
// second.
func (r *Runner) cancelled(batchID string) (bool, error) {
	r.mu.Lock()
	e, ok := r.metaCache[batchID]
	r.mu.Unlock()
	if ok && time.Since(e.at) < metaTTL {
		return e.cancelled, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	meta, _, err := getMeta(ctx, r.st.meta, batchID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	// A batch without metadata was deleted: its leftover jobs do not run.
	c := errors.Is(err, ErrNotFound) || meta.CancelledAt != nil
	r.mu.Lock()
	r.metaCache[batchID] = metaEntry{cancelled: c, at: time.Now()}
	r.mu.Unlock()
	return c, nil
}

// watchMeta learns of cancelled and deleted batches as it happens.
func (r *Runner) watchMeta() {
	for !r.stopping() {
		w, err := r.st.meta.WatchAll(r.ctx, jetstream.UpdatesOnly())
		if err != nil {
			r.logErr("batch runner: watch batches", err)
			r.pause(time.Second)
			continue
		}
	loop:
		for {
			select {
			case <-r.stopCh:
				break loop
			case e, ok := <-w.Updates():
				if !ok {
					break loop
				}
				if e == nil {
					continue
				}
				c := e.Operation() != jetstream.KeyValuePut
				if !c {
					var m Meta
					c = json.Unmarshal(e.Value(), &m) == nil && m.CancelledAt != nil
				}
				r.mu.Lock()
				r.metaCache[e.Key()] = metaEntry{cancelled: c, at: time.Now()}
				r.mu.Unlock()
			}
		}
		_ = w.Stop()
	}
}

// onInfo answers a status request with what this runner holds, on a reply
// subject that may be one (not one of llmq's or the server's subjects).
func (r *Runner) onInfo(m *nats.Msg) {
	if err := r.cfg.Subjects.CheckReply(m.Reply); err != nil {
		r.drop(&r.droppedMsgs, "batch runner: status request dropped", "err", err)
		return
	}
	b, _ := json.Marshal(r.Stats())
	_ = m.Respond(b)
}

// Stats is a snapshot of a runner.
type Stats = RunnerReport

// Stats returns what the runner holds now.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := RunnerReport{ID: r.cfg.ID, Running: maps.Clone(r.running), Windows: make(map[string]int, len(r.tiers)), Completed: r.completed.Load(),
		Workers: len(r.workers), DroppedBeats: r.droppedBeats.Load(), DroppedMessages: r.droppedMsgs.Load()}
	if r.cfg.Concurrency > 0 {
		for name := range r.tiers {
			rep.Windows[name] = r.window(name)
		}
		return rep
	}
	// One pass over the workers, as window does per tier.
	for name := range r.tiers {
		rep.Windows[name] = 0
	}
	for _, w := range r.workers {
		if _, ok := rep.Windows[w.tier]; ok && w.ready {
			reserve := 0
			if w.capacity > 1 {
				reserve = 1
			}
			rep.Windows[w.tier] += 2 * max(0, w.capacity-reserve)
		}
	}
	for name, n := range rep.Windows {
		rep.Windows[name] = min(n, r.cfg.MaxInFlight)
	}
	return rep
}

// truncate cuts s to at most n bytes, for logs.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
