package worker

import (
	"sync"
	"time"

	"github.com/llmq/llmq/schema"
)

// DefaultRateWindow is the window rpm and tpm limits count over: LiteLLM's
// minute.
const DefaultRateWindow = time.Minute

// A worker counts its deployment's calls and tokens over a sliding window
// (Config.RateWindow) and starts a call only within the limits
// (Config.RPM, Config.TPM). Every job of the deployment passes through its
// worker, so the count is exact: whatever dispatchers decide from
// heartbeats, a worker never admits more than RPM calls, nor calls whose
// tokens exceed TPM, in any window (see estimateTokens for what "tokens"
// are before a call's usage is known). A job over the limit is refused
// without a provider call (refuseRate); it is no failure of the
// deployment and starts no cooldown.

// rateEntry is one admitted call: when, and its tokens (the estimate until
// the call ends, then its usage).
type rateEntry struct {
	at     time.Time
	tokens int64
}

// rateWindow is a deployment's usage over the last window. Safe for
// concurrent use.
type rateWindow struct {
	window   time.Duration
	rpm, tpm int64
	// clock is time.Now; tests set their own. admit reads it under mu, so
	// calls enter the window in the order of their times, and a call's
	// time is when it was admitted, not earlier.
	clock func() time.Time

	mu     sync.Mutex
	calls  []rateEntry // admitted within the window, oldest first
	off    uint64      // ticket of calls[0]: tickets count admissions
	tokens int64       // sum of calls' tokens
	// waiting counts the jobs the worker took (take) whose call has not
	// been admitted or refused yet: heartbeats count them as calls to
	// come. admit moves a job from waiting to calls in one step, so a beat
	// never counts it twice nor misses it.
	waiting int64
	// refused is when the last call was refused.
	refused time.Time
}

func newRateWindow(window time.Duration, rpm, tpm int64) *rateWindow {
	return &rateWindow{window: window, rpm: rpm, tpm: tpm, clock: time.Now}
}

// expire forgets the calls admitted a window or more before now. Called
// with r.mu held.
func (r *rateWindow) expire(now time.Time) {
	edge := now.Add(-r.window)
	k := 0
	for k < len(r.calls) && !r.calls[k].at.After(edge) {
		r.tokens -= r.calls[k].tokens
		k++
	}
	if k > 0 {
		clear(r.calls[:k])
		r.calls = r.calls[k:]
		r.off += uint64(k)
	}
}

// take counts a job the worker took, waiting for admit (or for leave, when
// it ends before that). The worker calls it under its own mu, with the
// job's receipt, so a heartbeat's received and waiting agree.
func (r *rateWindow) take() {
	r.mu.Lock()
	r.waiting++
	r.mu.Unlock()
}

// leave forgets a job taken that ends before admit.
func (r *rateWindow) leave() {
	r.mu.Lock()
	r.waiting = max(r.waiting-1, 0)
	r.mu.Unlock()
}

// admit counts a call of est tokens now if the window has room for it,
// and returns its ticket (for settle) and whether the window is now full
// (no room for a call of the window's mean size). Otherwise it returns,
// in wait, how long until the window has room for it: when enough calls
// have left it; wait is negative when est alone is more than TPM (the job
// never fits).
func (r *rateWindow) admit(est int64) (ticket uint64, ok bool, wait time.Duration, full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock()
	r.expire(now)
	r.waiting = max(r.waiting-1, 0)
	n := int64(len(r.calls))
	if r.tpm > 0 && est > r.tpm {
		r.refused = now
		return 0, false, -1, false
	}
	ok = true
	if r.rpm > 0 && n+1 > r.rpm {
		// n-rpm+1 calls must leave: the last of them is calls[n-rpm].
		ok, wait = false, r.calls[n-r.rpm].at.Add(r.window).Sub(now)
	}
	if r.tpm > 0 && r.tokens+est > r.tpm {
		ok = false
		need := r.tokens + est - r.tpm
		for _, c := range r.calls {
			if need -= c.tokens; need <= 0 {
				wait = max(wait, c.at.Add(r.window).Sub(now))
				break
			}
		}
	}
	if !ok {
		r.refused = now
		return 0, false, wait, false
	}
	r.calls = append(r.calls, rateEntry{at: now, tokens: est})
	r.tokens += est
	return r.off + uint64(n), true, 0, r.full()
}

// full reports whether the window has no room for one more call of its
// mean size. Called with r.mu held.
func (r *rateWindow) full() bool {
	n := int64(len(r.calls))
	if r.rpm > 0 && n >= r.rpm {
		return true
	}
	if r.tpm > 0 {
		mean := int64(1)
		if n > 0 {
			mean = max(r.tokens/n, 1)
		}
		return r.tokens+mean > r.tpm
	}
	return false
}

// settle replaces the tokens counted for the call of ticket (its estimate)
// with tokens, its usage; a call already out of the window is not counted
// any more.
func (r *rateWindow) settle(ticket uint64, tokens int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ticket < r.off || ticket-r.off >= uint64(len(r.calls)) {
		return
	}
	c := &r.calls[ticket-r.off]
	r.tokens += tokens - c.tokens
	c.tokens = tokens
}

// usage is what a heartbeat reports of the window at now: calls, tokens,
// the jobs taken and not yet admitted, when the oldest call leaves the
// window (zero when empty), and when the worker should beat again because
// room frees in a window that is full or has refused a job (zero for no
// need).
func (r *rateWindow) usage(now time.Time) (calls, tokens, waiting int64, frees, wake time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	if len(r.calls) == 0 {
		return 0, 0, r.waiting, time.Time{}, time.Time{}
	}
	frees = r.calls[0].at.Add(r.window)
	if (r.rpm > 0 || r.tpm > 0) && (r.full() || now.Sub(r.refused) < r.window) {
		wake = frees
	}
	return int64(len(r.calls)), r.tokens, r.waiting, frees, wake
}

// estimateTokens is what a job counts for in the tpm window until its call
// ends and its usage is known: its prompt's characters divided by 4
// (rounded up: OpenAI's rule of thumb for English text) plus its output
// limit (max_tokens or max_completion_tokens, else the deployment's
// max_tokens, else nothing), at least 1. A call that fails counts its
// prompt part; one whose provider reports no usage keeps the estimate.
//
// An embedding job counts its input texts' characters divided by 4, and
// no output.
func estimateTokens(req *schema.Request) (total, prompt int64) {
	if req.IsEmbedding() {
		prompt = int64(inputChars(req)+3) / 4
		return max(prompt, 1), prompt
	}
	chars := 0
	for i := range req.Messages {
		chars += messageChars(&req.Messages[i])
	}
	prompt = int64(chars+3) / 4
	return max(prompt+int64(max(req.Limit(), 0)), 1), prompt
}

// roundUpMs rounds a wait up to whole milliseconds, the unit a
// retry-after travels in: a retry sent on the rounded-down time would find
// the window still full.
func roundUpMs(d time.Duration) time.Duration {
	if r := d % time.Millisecond; r != 0 {
		d += time.Millisecond - r
	}
	return d
}
