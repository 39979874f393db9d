package dispatcher

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// Conversation affinity (Config.Affinity, router_settings.
// llmq_conversation_affinity) sends the jobs of one conversation to the
// same host while it has room, so that the host's prompt cache (Ollama's,
// vLLM's prefix cache) holds the earlier turns and the next turn's prompt
// need not be processed again.
//
// The conversation is named by the Llmq-Session header, else the body's
// metadata.session_id, else its user, else a hash of the conversation's
// opening: its messages up to and including the first user message (the
// system prompt and the first question), the same for every turn of one
// conversation — a hash of all the earlier messages would change with
// every turn. What was taken from the body is written to Llmq-Session, so
// retries need not read the body again.
//
// The host is chosen by weighted rendezvous hashing: every worker scores
// hash(conversation, host) weighted by its slots (not by its measured
// speed, which moves with every beat and would move conversations with
// it), and the job goes to the best-scored worker with a free slot. The
// load bound of bounded-load consistent hashing is the host's slots: a
// conversation stays while its host has room, and spills when it is full,
// so no host takes more than its slots because of affinity. (A bound of
// (1+ε) × the tier's average load was tried: at light load it sent
// conversations away from hosts with free slots, since between beats a
// host that just answered a few jobs still looks busier than the average
// of an idle tier.) The ranking needs no
// state, so every dispatcher sends a conversation to the same host, and
// a conversation whose host is full goes to its second choice — the same
// one each time it spills. When no worker qualifies the strategy picks as
// without affinity.
//
// With shortest-expected-delay the ranking covers the busy workers too,
// and the preferred one is kept while its expected delay is within
// stayFactor of the best: taken when it has a free slot, else waited for
// (it frees a slot within a call's time ÷ its slots, and often at once:
// in a closed loop a conversation's next turn can arrive before the beat
// saying its last turn finished). A conversation is not kept on a host
// far slower than a free one, nor queued behind many jobs on its own.
//
// Jobs without a key (affinity off, or no conversation to name) route
// exactly as before; with affinity off the body is not read for it.

// stayFactor is how much longer than the best an expected delay may be on
// the host a conversation prefers (shortest-expected-delay): a prompt
// cache saves most of a long conversation's prefill, and a turn sent
// elsewhere costs two: that one, processed whole on a host without the
// conversation, and the next, back on its host, which lacks the turn sent
// away. (At 2, a host that hashing gave 7 of 12 conversations, 4 slots,
// sat at exactly twice the best delay when full, and noise in latency
// figures decided: the prompt-cache bench's hit rate varied between 93%
// and 99.9% across runs; at 3 it was 98.7–100% in fourteen runs, one and
// two dispatchers, with the same throughput.)
const stayFactor = 3

// stay is where shortest-expected-delay keeps the conversation of p,
// whose best expected delay elsewhere is delay (ms): the worker it
// prefers when that worker's expected delay is within stayFactor of it —
// w when it has a free slot (one of cands), else wait, to wait for it
// while p has not yet waited stayFactor × delay. ok is false when p should
// go where the strategy alone sends it. Called with d.mu held.
func (t *tier) stay(cands []*worker, p *pending, now time.Time, delay float64) (w, wait *worker, ok bool) {
	a := t.preferred(cands, p, now)
	if a == nil || a.delay(t.fastestKnown()) > stayFactor*delay {
		return nil, nil, false
	}
	if slices.Contains(cands, a) {
		return a, nil, true
	}
	if float64(now.Sub(p.arrived))/float64(time.Millisecond) <= stayFactor*delay {
		return nil, a, true // not past what staying was worth: wait for it
	}
	return nil, nil, false
}

// sessionKey returns the conversation key of a job arriving from a
// producer, 0 when it has none. Called without d.mu: a body can be large.
func sessionKey(m *nats.Msg) uint64 {
	if v := m.Header[schema.HeaderSession]; len(v) > 0 && v[0] != "" {
		return hashString(clipSession(v[0]))
	}
	name := bodySession(m)
	if name == "" {
		return 0
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header[schema.HeaderSession] = []string{name}
	return hashString(name)
}

// retryKey is the conversation key of a bounced job: its Llmq-Session.
func retryKey(h nats.Header) uint64 {
	if v := h.Get(schema.HeaderSession); v != "" {
		return hashString(clipSession(v))
	}
	return 0
}

// bodySession names the conversation from the body: metadata.session_id,
// else "user:" and the user, else "conv:" and the hash of the messages up
// to the first user message; "" when there is none of these.
func bodySession(m *nats.Msg) string {
	var probe struct {
		User     string           `json:"user" msgpack:"user"`
		Metadata schema.Metadata  `json:"metadata" msgpack:"metadata"`
		Messages []schema.Message `json:"messages" msgpack:"messages"`
	}
	if err := broker.CodecOf(m).Unmarshal(m.Data, &probe); err != nil {
		return "" // the worker refuses the body, with the reason
	}
	if s := probe.Metadata["session_id"]; s != "" {
		return clipSession(s)
	}
	if probe.User != "" {
		return "user:" + clipSession(probe.User)
	}
	h := uint64(fnvOffset)
	for i := range probe.Messages {
		msg := &probe.Messages[i]
		h = fnvAdd(fnvAdd(h, msg.Role), msg.Text())
		if msg.Role == schema.RoleUser {
			return "conv:" + strconv.FormatUint(h, 16)
		}
	}
	return ""
}

func clipSession(s string) string {
	if len(s) > schema.MaxSessionLen {
		return s[:schema.MaxSessionLen]
	}
	return s
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnvAdd adds s and a separator to an FNV-1a hash.
func fnvAdd(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return (h ^ 0xff) * fnvPrime
}

// hashString is a stable 64-bit hash (FNV-1a): the same in every
// dispatcher, so that all send a conversation to the same host.
func hashString(s string) uint64 {
	if h := fnvAdd(fnvOffset, s); h != 0 {
		return h
	}
	return 1
}

// mix is splitmix64's finalizer, spreading a combined hash.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// place is the host a worker calls (its api_base), else its deployment:
// what a prompt cache belongs to.
func (w *worker) place() string {
	if w.hb.Host != "" {
		return w.hb.Host
	}
	return w.hb.Deployment
}

// rendezvous is w's weighted rendezvous score for key: slots ÷ −ln(u),
// u uniform in (0, 1) from hash(key, host).
func (w *worker) rendezvous(key uint64) float64 {
	u := (float64(mix(key^mix(hashString(w.place())))>>11) + 0.5) / (1 << 53)
	return float64(w.hb.Capacity) / -math.Log(u)
}

// affine returns the candidate conversation key prefers: the best-scored
// (rendezvous) of cands, the workers with a free slot. Called with d.mu
// held.
func (t *tier) affine(cands []*worker, key uint64) *worker {
	var best *worker
	bestScore := 0.0
	for _, w := range cands {
		if s := w.rendezvous(key); best == nil || s > bestScore {
			best, bestScore = w, s
		}
	}
	return best
}

// preferred is the worker conversation key prefers among cands (free)
// and the busy workers of the same order p may wait for; nil when there
// is none. Called with d.mu held.
func (t *tier) preferred(cands []*worker, p *pending, now time.Time) *worker {
	best := t.affine(cands, p.key)
	if len(cands) == 0 {
		return best
	}
	bestScore := 0.0
	if best != nil {
		bestScore = best.rendezvous(p.key)
	}
	o := order(cands[0].hb.Order)
	for _, v := range t.workers {
		if order(v.hb.Order) != o || slices.Contains(cands, v) || !t.waitable(v, p, now) {
			continue
		}
		if s := v.rendezvous(p.key); best == nil || s > bestScore {
			best, bestScore = v, s
		}
	}
	return best
}
