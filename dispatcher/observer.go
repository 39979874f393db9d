package dispatcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// Observer is told of what a dispatcher's Stats do not count: heartbeats,
// lost workers, and each job forwarded or answered with an error, by
// tier. Package metrics implements it. Its methods may run with the
// dispatcher's lock held: they must be quick, safe for concurrent use, and
// must not call the dispatcher.
type Observer interface {
	// Heartbeat is called for every heartbeat accepted: well-formed (see
	// broker.Subjects.DecodeHeartbeat), of a configured tier or one
	// admitted within Config.MaxLearnedTiers, and not overtaken by a newer
	// beat. Tiers and codes passed to an Observer are never more than
	// those, so they may be used as metric labels.
	Heartbeat(hb *schema.Heartbeat)
	// WorkerLost is called when a worker is dropped after three missed
	// beats.
	WorkerLost(tier, worker string)
	// Dispatched is called for every job forwarded to a worker (retries
	// and jobs sent again after a lost worker included), with the time it
	// waited for a free worker.
	Dispatched(tier string, queued time.Duration)
	// Answered is called for every job the dispatcher answers with an
	// error. tier is "" when the dispatcher knows no tier of that name.
	Answered(tier, code string)
}

func (d *Dispatcher) observeBeat(hb *schema.Heartbeat) {
	if o := d.cfg.Observer; o != nil {
		o.Heartbeat(hb)
	}
}

// observeLost is called with d.mu held.
func (d *Dispatcher) observeLost(tier, worker string) {
	if o := d.cfg.Observer; o != nil {
		o.WorkerLost(tier, worker)
	}
}

func (d *Dispatcher) observeDispatched(tier string, queued time.Duration) {
	if o := d.cfg.Observer; o != nil {
		o.Dispatched(tier, queued)
	}
}

// observeAnswered is called without d.mu held.
func (d *Dispatcher) observeAnswered(m *nats.Msg, code string) {
	o := d.cfg.Observer
	if o == nil {
		return
	}
	name, ok := d.cfg.Subjects.Tier(m.Subject)
	if !ok && m.Header != nil { // a bounced job, on the retry subject
		name = cmpOr(m.Header.Get(schema.HeaderOriginTier), m.Header.Get(schema.HeaderTier))
	}
	d.mu.Lock()
	name = d.groupOf(m, name)
	d.mu.Unlock()
	o.Answered(name, code)
}

// ServiceName is the NATS micro service name dispatchers register under
// (`nats micro info llmq-dispatcher`).
const ServiceName = "llmq-dispatcher"

// ServiceSummary is the data of a dispatcher's micro STATS reply: its
// counters and queue depths, without the fleet.
type ServiceSummary struct {
	Received     uint64            `json:"received"`
	Dispatched   uint64            `json:"dispatched"`
	Retries      uint64            `json:"retries"`
	Fallbacks    uint64            `json:"fallbacks"`
	Redispatched uint64            `json:"redispatched"`
	Errors       map[string]uint64 `json:"errors"`
	Queued       map[string]int    `json:"queued"`
	Workers      int               `json:"workers"`
}

func (d *Dispatcher) summary() ServiceSummary {
	s := d.Stats()
	out := ServiceSummary{Received: s.Received, Dispatched: s.Dispatched, Retries: s.Retries, Fallbacks: s.Fallbacks,
		Redispatched: s.Redispatched, Errors: s.Errors, Queued: map[string]int{}}
	for _, t := range s.Tiers {
		out.Queued[t.Name] = t.Queued + t.BatchQueued
		out.Workers += len(t.Workers)
	}
	return out
}

// ServiceSubject returns the subject of the dispatcher's micro "stats"
// endpoint, which answers its Stats as JSON.
func (d *Dispatcher) ServiceSubject() string {
	return d.cfg.Subjects.ServiceStats("dispatcher", d.cfg.ID)
}

// startService registers the dispatcher with NATS micro, so `nats micro
// ls` and $SRV.PING find it; its STATS data is a ServiceSummary and its
// one endpoint, "stats", answers the full Stats. Jobs do not go through
// micro: a micro endpoint runs one request at a time, and the job path
// keeps its own queue subscriptions.
func (d *Dispatcher) startService() error {
	if d.cfg.NoService {
		return nil
	}
	prefix := d.cfg.Subjects.Name()
	version, build := broker.ServiceVersion(d.cfg.Version)
	svc, err := micro.AddService(d.nc, micro.Config{
		Name:        ServiceName,
		Version:     version,
		Description: "llmq dispatcher: routes " + d.cfg.Subjects.JobsWildcard() + " to workers (" + d.cfg.Strategy + ")",
		Metadata: map[string]string{
			"prefix": prefix, "dispatcher": d.cfg.ID, "strategy": d.cfg.Strategy,
			"jobs_subject": d.cfg.Subjects.JobsWildcard(), "queue_group": d.cfg.Subjects.DispatcherQueue(), "build": build,
		},
		StatsHandler: func(*micro.Endpoint) any { return d.summary() },
	})
	if err != nil {
		return fmt.Errorf("dispatcher: micro service: %w", err)
	}
	stats := micro.HandlerFunc(func(r micro.Request) {
		b, _ := json.Marshal(d.Stats())
		_ = r.Respond(b)
	})
	if err := svc.AddEndpoint("stats", stats, micro.WithEndpointSubject(d.ServiceSubject()), micro.WithEndpointQueueGroupDisabled()); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("dispatcher: micro endpoint: %w", err)
	}
	d.svc = svc
	return nil
}

func (d *Dispatcher) stopService() {
	if d.svc != nil {
		if err := d.svc.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			d.log.Debug("micro service stop", "err", err)
		}
	}
}
