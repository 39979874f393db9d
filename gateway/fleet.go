package gateway

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the bounds on what heartbeats can make the gateway hold.
const (
	// DefaultMaxWorkers is Config.MaxWorkers' default.
	DefaultMaxWorkers = 4096
	// DefaultMaxTiers is Config.MaxTiers' default.
	DefaultMaxTiers = 256
)

// answeredTTL is how long a tier the gateway learned only from a
// completion (its workers' beats had not arrived yet) stays known.
const answeredTTL = 3 * time.Minute

// sweepEvery bounds how often a full pass over the workers runs when the
// gateway is full or asked whether a tier is known: a flood of beats must
// not make each beat cost a pass over thousands of workers.
const sweepEvery = 100 * time.Millisecond

// fleet is what the gateway knows of the tiers: the configured ones, and
// those learned from heartbeats (and from completions), bounded. Any client
// of the NATS server can publish heartbeats, so the workers and tiers it
// holds are capped, expire with their beats, and a beat that would go over
// a cap is dropped and counted.
type fleet struct {
	configured map[string]bool
	maxWorkers int
	maxTiers   int

	mu        sync.Mutex
	workers   map[string]seenWorker // worker id -> its tier, while it beats
	tiers     map[string]*tierSeen  // learned tiers
	lastSweep time.Time

	dropped atomic.Uint64
	log     rateLog
}

type seenWorker struct {
	tier    string
	expires time.Time
}

// tierSeen is a learned tier: known while a worker of it beats, or until
// answered after a completion of it.
type tierSeen struct {
	workers  int // entries of fleet.workers naming it, expired or not
	answered time.Time
}

func newFleet(configured []string, maxWorkers, maxTiers int, log *slog.Logger) *fleet {
	f := &fleet{
		configured: map[string]bool{}, maxWorkers: maxWorkers, maxTiers: maxTiers,
		workers: map[string]seenWorker{}, tiers: map[string]*tierSeen{},
		log: rateLog{log: log, every: 5 * time.Second},
	}
	for _, t := range configured {
		f.configured[t] = true
	}
	return f
}

// beat records that worker serves tier until expires; stopped forgets it.
// It reports false when the beat was dropped: a new worker or tier over its
// cap.
func (f *fleet) beat(worker, tier string, stopped bool, now, expires time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.workers[worker]
	if stopped {
		if ok {
			f.forgetLocked(worker, w, now)
		}
		return true
	}
	if ok && w.tier == tier {
		f.workers[worker] = seenWorker{tier: tier, expires: expires}
		return true
	}
	if !ok && len(f.workers) >= f.maxWorkers {
		f.sweepLocked(now, false)
		if len(f.workers) >= f.maxWorkers {
			return false
		}
	}
	t := f.tiers[tier]
	if t == nil && !f.configured[tier] {
		if len(f.tiers) >= f.maxTiers {
			f.sweepLocked(now, false)
		}
		if len(f.tiers) >= f.maxTiers {
			return false
		}
	}
	if ok {
		f.forgetLocked(worker, w, now) // it moved to another tier
	}
	if t == nil && !f.configured[tier] {
		t = &tierSeen{}
		f.tiers[tier] = t
	}
	if t != nil {
		t.workers++
	}
	f.workers[worker] = seenWorker{tier: tier, expires: expires}
	return true
}

// answered records that a completion of tier came back: the tier is real
// even when its workers' first beats have not reached the gateway. It
// reports whether the tier is known now (false when over the cap).
func (f *fleet) answered(tier string, now time.Time) bool {
	if f.configured[tier] {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tiers[tier]
	if t == nil {
		if len(f.tiers) >= f.maxTiers {
			f.sweepLocked(now, false)
		}
		if len(f.tiers) >= f.maxTiers {
			return false
		}
		t = &tierSeen{}
		f.tiers[tier] = t
	}
	t.answered = now.Add(answeredTTL)
	return true
}

// forgetLocked removes worker w.
func (f *fleet) forgetLocked(id string, w seenWorker, now time.Time) {
	delete(f.workers, id)
	if t := f.tiers[w.tier]; t != nil {
		t.workers--
		if t.workers <= 0 && !now.Before(t.answered) {
			delete(f.tiers, w.tier)
		}
	}
}

// sweepLocked forgets the workers whose beats expired, and the tiers left
// without workers; unless force, at most once per sweepEvery.
func (f *fleet) sweepLocked(now time.Time, force bool) {
	if !force && now.Sub(f.lastSweep) < sweepEvery {
		return
	}
	f.lastSweep = now
	for id, w := range f.workers {
		if now.After(w.expires) {
			f.forgetLocked(id, w, now)
		}
	}
	for name, t := range f.tiers {
		if t.workers <= 0 && !now.Before(t.answered) {
			delete(f.tiers, name)
		}
	}
}

// known reports whether tier is configured or learned and live.
func (f *fleet) known(tier string, now time.Time) bool {
	if f.configured[tier] {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweepLocked(now, false)
	t := f.tiers[tier]
	return t != nil && (t.workers > 0 || now.Before(t.answered))
}

// list returns the known tiers, sorted.
func (f *fleet) list(now time.Time) []string {
	out := make([]string, 0, len(f.configured))
	for t := range f.configured {
		out = append(out, t)
	}
	f.mu.Lock()
	f.sweepLocked(now, true)
	for t := range f.tiers {
		out = append(out, t)
	}
	f.mu.Unlock()
	slices.Sort(out)
	return slices.Compact(out)
}

// size returns how many workers the gateway holds.
func (f *fleet) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.workers)
}

// drop counts a dropped heartbeat and logs it, at most a line per few
// seconds.
func (f *fleet) drop(reason string, args ...any) {
	n := f.dropped.Add(1)
	f.log.warn("heartbeat dropped", append(args, "reason", reason, "dropped_total", n)...)
}

// rateLog logs at most one line per every.
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	last  atomic.Int64
}

func (l *rateLog) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(l.every) || !l.last.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn(msg, args...)
}
