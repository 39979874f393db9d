package dispatcher

import (
	"sync/atomic"
	"time"
)

// logEvery is the least time between two log lines about dropped or
// refused messages of one kind: a flood of hostile messages costs a
// counter increment each, not a log line each.
const logEvery = 5 * time.Second

// limiter lets one log line through per logEvery.
type limiter struct{ next atomic.Int64 }

func (l *limiter) allow(now time.Time) bool {
	n := l.next.Load()
	if now.UnixNano() < n {
		return false
	}
	return l.next.CompareAndSwap(n, now.Add(logEvery).UnixNano())
}

// drops counts the messages the dispatcher refused or repaired, each kind
// with its own log limiter.
type drops struct {
	badHeartbeats, badBounces, badReplies, internalHeaders, tierLimit, workerLimit atomic.Uint64

	noReplyLog, hbLog, bounceLog, replyLog, headerLog, limitLog limiter
}

// Dropped counts the messages a dispatcher refused, or repaired before
// using them, because no well-behaved llmq component sends them. Each kind
// is logged at most once per few seconds.
type Dropped struct {
	// BadHeartbeats are beats broker.Subjects.DecodeHeartbeat refused
	// (malformed, naming a subject not their own, ...).
	BadHeartbeats uint64 `json:"bad_heartbeats"`
	// BadBounces are messages on <prefix>.retry that were not a bounce a
	// worker could have sent (no valid tier, invalid origin tier, no
	// headers); each was answered with an internal error when its reply
	// subject allowed.
	BadBounces uint64 `json:"bad_bounces"`
	// BadReplies are jobs and bounces whose reply subject failed
	// broker.Subjects.CheckReply: answered bad_request when the subject
	// could safely be published to, else dropped. Never forwarded.
	BadReplies uint64 `json:"bad_replies"`
	// InternalHeaders are jobs that arrived from a producer carrying
	// headers only llmq components may set; the headers were removed.
	InternalHeaders uint64 `json:"internal_headers"`
	// TierLimit are beats naming a new tier refused because the dispatcher
	// already knows Config.MaxLearnedTiers tiers it learned from beats.
	TierLimit uint64 `json:"tier_limit"`
	// WorkerLimit are beats of a new worker refused because the dispatcher
	// already knows Config.MaxWorkers workers.
	WorkerLimit uint64 `json:"worker_limit"`
}

func (d *drops) snapshot() Dropped {
	return Dropped{
		BadHeartbeats: d.badHeartbeats.Load(), BadBounces: d.badBounces.Load(), BadReplies: d.badReplies.Load(),
		InternalHeaders: d.internalHeaders.Load(), TierLimit: d.tierLimit.Load(), WorkerLimit: d.workerLimit.Load(),
	}
}
