package broker

import "strings"

// DefaultPrefix is the first token of every llmq subject.
const DefaultPrefix = "llm"

// Subjects builds llmq's subjects under one prefix:
//
//	<prefix>.jobs.<tier>        producers publish jobs (request-reply)
//	<prefix>.w.<worker>         a dispatcher forwards a job to the worker it picked
//	<prefix>.hb.<worker>        workers publish heartbeats
//	<prefix>.ctl.announce       a starting dispatcher asks workers to beat now
//	<prefix>.cancel.<reply>     a producer cancels its job whose reply subject is <reply>
//
// The zero value uses DefaultPrefix.
type Subjects struct {
	Prefix string
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Jobs is the subject producers publish a tier's jobs on.
func (s Subjects) Jobs(tier string) string { return s.prefix() + ".jobs." + tier }

// JobsWildcard matches the jobs of every tier.
func (s Subjects) JobsWildcard() string { return s.prefix() + ".jobs.>" }

// Tier returns the tier of a jobs subject, and whether it is one.
func (s Subjects) Tier(subject string) (string, bool) {
	p := s.prefix()
	if len(subject) <= len(p)+6 || subject[:len(p)] != p || subject[len(p):len(p)+6] != ".jobs." {
		return "", false
	}
	return subject[len(p)+6:], true
}

// Worker is the subject a worker takes jobs on.
func (s Subjects) Worker(id string) string { return s.prefix() + ".w." + id }

// Heartbeat is the subject a worker beats on.
func (s Subjects) Heartbeat(id string) string { return s.prefix() + ".hb." + id }

// HeartbeatWildcard matches every worker's heartbeats.
func (s Subjects) HeartbeatWildcard() string { return s.prefix() + ".hb.*" }

// Announce is the subject a starting dispatcher (or `llmq status`) asks
// workers to beat at once on.
func (s Subjects) Announce() string { return s.prefix() + ".ctl.announce" }

// DispatcherQueue is the queue group dispatchers share jobs in.
func (s Subjects) DispatcherQueue() string { return s.prefix() + "-dispatchers" }

// Token makes s safe as one subject token: characters other than letters,
// digits, '-' and '_' become '_'.
func Token(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Retry is the subject workers bounce failed jobs to, for any dispatcher
// (in the queue group) to retry, fall back or answer.
func (s Subjects) Retry() string { return s.prefix() + ".retry" }

// Cancel is where a producer cancels its job whose reply subject is reply
// (a job sent with schema.HeaderControl): <prefix>.cancel.<reply>. The
// subject carries the reply, so a producer allowed to publish only under
// its own inbox's cancel subjects (auth) can cancel only its own jobs.
func (s Subjects) Cancel(reply string) string { return s.prefix() + ".cancel." + reply }

// CancelWildcard matches every Cancel subject: workers listen on it.
func (s Subjects) CancelWildcard() string { return s.prefix() + ".cancel.>" }

// Cancelled returns the reply subject a Cancel subject names.
func (s Subjects) Cancelled(subject string) (string, bool) {
	reply, ok := strings.CutPrefix(subject, s.prefix()+".cancel.")
	return reply, ok && reply != ""
}

// Name is the prefix itself (DefaultPrefix for the zero value).
func (s Subjects) Name() string { return s.prefix() }

// ServiceStats is the subject of a component's micro "stats" endpoint:
// <prefix>.ctl.<kind>.<id>.stats (kind: dispatcher, worker, gateway).
func (s Subjects) ServiceStats(kind, id string) string {
	return s.prefix() + ".ctl." + kind + "." + id + ".stats"
}
