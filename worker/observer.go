package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// Observer is told of every job a worker ends and of every cooldown it
// starts; package metrics implements it. Its methods run on the worker's
// job goroutines: they must be quick and safe for concurrent use.
type Observer interface {
	// JobDone is called once per job the worker took, when it ends: the
	// same events the heartbeat's Completed and Failed count.
	JobDone(r JobReport)
	// CooledDown is called when a failure makes the deployment rest for
	// rest (see Cooldown); reason is the failure's error code.
	CooledDown(tier, deployment, reason string, rest time.Duration)
}

// Outcomes of JobReport besides the error codes of schema.
const (
	// OutcomeOK is a job answered with a completion.
	OutcomeOK = "ok"
	// OutcomeDropped is a job that could not be answered at all: no reply
	// subject, or one a worker must not publish on (see
	// broker.Subjects.CheckReply).
	OutcomeDropped = "dropped"
)

// JobReport is one job a worker ended.
type JobReport struct {
	Tier, Deployment string
	// Outcome is OutcomeOK, OutcomeDropped, or the code of the error the
	// job ended with (an attempt bounced to the dispatchers for another
	// try counts here with its error's code).
	Outcome string
	// Routing and Usage are set for OutcomeOK: the call's timings, cost
	// and token counts.
	Routing *schema.Routing
	Usage   schema.Usage
}

// jobDone counts a job answered with a completion.
func (w *Worker) jobDone(routing *schema.Routing, usage schema.Usage) {
	w.done.Add(1)
	if o := w.cfg.Observer; o != nil {
		o.JobDone(JobReport{Tier: w.cfg.Tier, Deployment: w.cfg.Deployment, Outcome: OutcomeOK, Routing: routing, Usage: usage})
	}
}

// jobFailed counts a job that ended without a completion.
func (w *Worker) jobFailed(outcome string) {
	w.failed.Add(1)
	if o := w.cfg.Observer; o != nil {
		o.JobDone(JobReport{Tier: w.cfg.Tier, Deployment: w.cfg.Deployment, Outcome: outcome})
	}
}

// coolFail records a failure toward a cooldown and, when it starts one,
// logs it, tells dispatchers at once and tells the observer.
func (w *Worker) coolFail(e *schema.Error) {
	now := time.Now()
	w.mu.Lock()
	rest := w.cool.fail(w.cfg.Cooldown, e, now)
	until := w.cool.until
	w.mu.Unlock()
	if !rest {
		return
	}
	w.log.Warn("deployment cooling down", "code", e.Code, "err", e.Message, "until", until)
	w.kick()
	if o := w.cfg.Observer; o != nil {
		o.CooledDown(w.cfg.Tier, w.cfg.Deployment, e.Code, until.Sub(now))
	}
}

// cost is the price of a call with usage u, in US dollars.
func (w *Worker) cost(u schema.Usage) float64 {
	return float64(u.PromptTokens)*w.cfg.InputCostPerToken + float64(u.CompletionTokens)*w.cfg.OutputCostPerToken
}

// Tier returns the tier the worker serves.
func (w *Worker) Tier() string { return w.cfg.Tier }

// Deployment returns the worker's deployment id.
func (w *Worker) Deployment() string { return w.cfg.Deployment }

// Load returns the jobs the worker holds now and how many it runs at
// once. Unlike Heartbeat it has no side effect.
func (w *Worker) Load() (inFlight, capacity int) {
	return int(w.inflight.Load()), w.cfg.Concurrency
}

// Cooling returns the end of the rest the deployment takes after failures
// and the error code that caused it; the zero time when it is not resting.
func (w *Worker) Cooling() (until time.Time, reason string) {
	w.mu.Lock()
	ms, reason := w.cool.state(time.Now())
	w.mu.Unlock()
	if ms == 0 {
		return time.Time{}, ""
	}
	return time.UnixMilli(ms), reason
}

// ServiceName is the NATS micro service name workers register under
// (`nats micro info llmq-worker`).
const ServiceName = "llmq-worker"

// ServiceStats is what a worker's micro "stats" endpoint answers, and the
// data of its STATS reply: its counters, and latency percentiles over the
// recent calls (the window its heartbeat's median comes from).
type ServiceStats struct {
	Worker     string `json:"worker"`
	Tier       string `json:"tier"`
	Deployment string `json:"deployment"`
	State      string `json:"state"`
	InFlight   int    `json:"in_flight"`
	Capacity   int    `json:"capacity"`
	Completed  uint64 `json:"completed"`
	Failed     uint64 `json:"failed"`
	// Dropped counts the jobs of Failed that could not be answered at all
	// (OutcomeDropped).
	Dropped uint64 `json:"dropped"`
	// DroppedCancels counts cancel messages (Subjects.Cancel) that named
	// no valid reply subject.
	DroppedCancels uint64 `json:"dropped_cancels,omitempty"`
	// EarlyCancels is how many cancels the worker keeps for jobs it has
	// not got (yet): cancelled while queued in a dispatcher.
	EarlyCancels int `json:"early_cancels,omitempty"`
	// Latency percentiles of the provider call, in milliseconds.
	P50Ms   float64 `json:"p50_ms"`
	P90Ms   float64 `json:"p90_ms"`
	P99Ms   float64 `json:"p99_ms"`
	Samples int     `json:"samples"`
	// CoolingUntilMs (Unix ms) and CoolingReason as in heartbeats.
	CoolingUntilMs int64  `json:"cooling_until_ms,omitempty"`
	CoolingReason  string `json:"cooling_reason,omitempty"`
}

// ServiceStats returns the worker's counters and latency percentiles.
func (w *Worker) ServiceStats() ServiceStats {
	state := schema.StateReady
	if w.draining.Load() {
		state = schema.StateDraining
	}
	qs, n := w.window.quantiles(0.5, 0.9, 0.99)
	in, capacity := w.Load()
	s := ServiceStats{
		Worker: w.cfg.ID, Tier: w.cfg.Tier, Deployment: w.cfg.Deployment, State: state,
		InFlight: in, Capacity: capacity, Completed: w.done.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(),
		DroppedCancels: w.droppedCancels.Load(), EarlyCancels: w.cancels.waiting(), P50Ms: qs[0], P90Ms: qs[1], P99Ms: qs[2], Samples: n,
	}
	if until, reason := w.Cooling(); !until.IsZero() {
		s.CoolingUntilMs, s.CoolingReason = until.UnixMilli(), reason
	}
	return s
}

// quantiles returns the latencies at quantiles qs of the window (nearest
// rank), and the number of samples.
func (w *window) quantiles(qs ...float64) ([]float64, int) {
	w.mu.Lock()
	v := slices.Clone(w.latency[:w.n])
	w.mu.Unlock()
	slices.Sort(v)
	out := make([]float64, len(qs))
	if len(v) == 0 {
		return out, 0
	}
	for i, q := range qs {
		k := int(q*float64(len(v))+0.999999) - 1
		out[i] = v[min(max(k, 0), len(v)-1)]
	}
	return out, len(v)
}

// startService registers the worker with NATS micro, so `nats micro ls`
// and $SRV.PING find it. Its one endpoint, "stats", answers ServiceStats
// on ServiceSubject. Jobs do not go through micro: they
// keep their own subscription (a micro endpoint runs one request at a
// time).
func (w *Worker) startService() error {
	if w.cfg.NoService {
		return nil
	}
	prefix := w.cfg.Subjects.Name()
	version, build := broker.ServiceVersion(w.cfg.Version)
	svc, err := micro.AddService(w.nc, micro.Config{
		Name:        ServiceName,
		Version:     version,
		Description: fmt.Sprintf("llmq worker of tier %s: deployment %s (%s/%s)", w.cfg.Tier, w.cfg.Deployment, w.cfg.ProviderName, w.cfg.Model),
		Metadata: map[string]string{
			"prefix": prefix, "worker": w.cfg.ID, "tier": w.cfg.Tier, "deployment": w.cfg.Deployment,
			"provider": w.cfg.ProviderName, "model": w.cfg.Model, "jobs_subject": w.subject, "build": build,
		},
		StatsHandler: func(*micro.Endpoint) any { return w.ServiceStats() },
	})
	if err != nil {
		return fmt.Errorf("worker: micro service: %w", err)
	}
	stats := micro.HandlerFunc(func(r micro.Request) {
		b, _ := json.Marshal(w.ServiceStats())
		_ = r.Respond(b)
	})
	if err := svc.AddEndpoint("stats", stats, micro.WithEndpointSubject(w.ServiceSubject()), micro.WithEndpointQueueGroupDisabled()); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("worker: micro endpoint: %w", err)
	}
	w.svc = svc
	return nil
}

// ServiceSubject returns the subject of the worker's micro "stats"
// endpoint, which answers its ServiceStats as JSON.
func (w *Worker) ServiceSubject() string {
	return w.cfg.Subjects.ServiceStats("worker", w.cfg.ID)
}

func (w *Worker) stopService() {
	if w.svc != nil {
		if err := w.svc.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			w.log.Debug("micro service stop", "err", err)
		}
	}
}
