package dispatcher

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// A bounce is a job a worker returns on <prefix>.retry after a failed
// attempt, with the failure and the job's history in its headers. Anyone
// who may publish there can send one: parseBounce reads nothing without
// checking and clamping it.
const (
	// maxExclude bounds the deployments a bounce may exclude.
	maxExclude = 32
	// maxRetryAfter bounds a bounce's Retry-After (a provider's longer wait
	// fails the job over to a fallback or back to its producer instead).
	maxRetryAfter = broker.MaxCooling
	// maxBounceMessage bounds the error message a bounce carries, in bytes.
	maxBounceMessage = 1024
	// maxPolicyCount bounds retries and fallbacks in the retry budget, so
	// that a configuration typo cannot overflow it.
	maxPolicyCount = 1000
)

var (
	// errBadBounce wraps every reason parseBounce refuses a bounce.
	errBadBounce = errors.New("bad bounce")
	// errBounceReply is the refusal of a bounce's reply subject.
	errBounceReply = errors.New("bad bounce reply subject")
)

// bounce is what a bounced job's headers say, checked and clamped.
type bounce struct {
	// tier is the tier the failed attempt ran in.
	tier string
	// p is the job's history (msg unset): attempts, tier attempts,
	// fallbacks taken, origin tier, excluded deployments, deadline,
	// priority.
	p pending
	// err is the failure, with a known code.
	err *schema.Error
	// refused is the worker that refused the job at its deployment's usage
	// limit, without calling its provider (Llmq-Refused on a rate_limited
	// bounce): no attempt was made. "" for a failed attempt.
	refused string
}

// bounceRules are what parseBounce checks a bounce against.
type bounceRules struct {
	subjects                   broker.Subjects
	policy                     *Policy
	defaultTimeout, maxTimeout time.Duration
}

// parseBounce reads a bounce received at now, with headers h and reply
// subject reply. It refuses (errors wrapping errBadBounce, or
// errBounceReply for the reply subject) what no worker sends: a reply
// subject CheckReply refuses, no headers, a missing or invalid tier or
// origin tier, a malformed deadline or count. It clamps the rest:
//   - attempts to 1…budget+1 (Policy.budget; the caller answers a job
//     past its budget), tier attempts to 1…most retries+1, fallbacks to
//     0…max fallbacks (a negative count once indexed the fallback list at
//     -1);
//   - the deadline to now + maxTimeout, Retry-After to maxRetryAfter (a
//     retry whose wait ends after the deadline is not made: onRetry);
//   - the exclude list to maxExclude names of at most broker.MaxNameLen;
//   - the error to a known code, a message of maxBounceMessage bytes and
//     a provider status of 100…599;
//   - a rate_limited bounce marked Llmq-Refused (a worker id) made no
//     attempt: its counts are one less, its deployment is not excluded.
//
// It never panics (FuzzParseBounce) and does not modify h. Even a refused
// bounce returns its failure in b.err, to answer the producer with.
func parseBounce(h nats.Header, reply string, r bounceRules, now time.Time) (b bounce, err error) {
	b.err = bouncedError(h)
	if err := r.subjects.CheckReply(reply); err != nil {
		return b, fmt.Errorf("%w: %v", errBounceReply, err)
	}
	if h == nil {
		return b, fmt.Errorf("%w: no headers", errBadBounce)
	}
	b.tier = h.Get(schema.HeaderTier)
	if !broker.ValidGroup(b.tier) {
		return b, fmt.Errorf("%w: tier %.64q", errBadBounce, b.tier)
	}
	p := &b.p
	p.origin = h.Get(schema.HeaderOriginTier)
	if p.origin != "" && !broker.ValidGroup(p.origin) {
		return b, fmt.Errorf("%w: origin tier %.64q", errBadBounce, p.origin)
	}
	deadline, derr := deadlineOf(h, now, r.defaultTimeout, r.maxTimeout)
	if derr != nil {
		return b, fmt.Errorf("%w: %s", errBadBounce, derr.Message)
	}
	p.arrived, p.deadline = now, deadline
	p.batch = h.Get(schema.HeaderPriority) == schema.PriorityBatch
	var counts [3]int
	for i, c := range []struct {
		key      string
		def, min int
		max      int
	}{
		{schema.HeaderAttempt, 1, 1, r.policy.budget() + 1},
		{schema.HeaderTierAttempts, 1, 1, r.policy.mostRetries() + 1},
		{schema.HeaderFallbacks, 0, 0, r.policy.maxFallbacks()},
	} {
		v := h.Get(c.key)
		if v == "" {
			counts[i] = c.def
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return b, fmt.Errorf("%w: header %s: %.32q is not a number", errBadBounce, c.key, v)
		}
		counts[i] = int(min(max(n, int64(c.min)), int64(c.max)))
	}
	p.attempts, p.tierAttempts, p.fallbacks = counts[0], counts[1], counts[2]
	failed := h.Get(schema.HeaderFailedDeployment)
	if id := h.Get(schema.HeaderRefused); id != "" && b.err.Code == schema.CodeRateLimited {
		if !broker.ValidWorkerID(id) {
			return b, fmt.Errorf("%w: header %s: %.64q is not a worker id", errBadBounce, schema.HeaderRefused, id)
		}
		// No attempt was made: not counted, and the deployment is not
		// avoided (it has room again after the retry-after).
		b.refused, failed = id, ""
		p.attempts, p.tierAttempts = p.attempts-1, p.tierAttempts-1
	}
	p.exclude = excludeList(h.Get(schema.HeaderExclude), failed)
	return b, nil
}

// excludeList reads a bounce's comma-separated excluded deployments and
// adds the failed one: at most maxExclude names, each not empty, at most
// broker.MaxNameLen bytes and without a comma (others are skipped: the
// list travels comma-separated).
func excludeList(list, failed string) []string {
	var out []string
	add := func(name string) {
		if name != "" && len(name) <= broker.MaxNameLen && !strings.Contains(name, ",") && len(out) < maxExclude && !contains(out, name) {
			out = append(out, name)
		}
	}
	for list != "" && len(out) < maxExclude {
		name, rest, _ := strings.Cut(list, ",")
		add(name)
		list = rest
	}
	if failed != "" && !contains(out, failed) {
		if len(out) == maxExclude {
			out = out[1:] // the failed deployment matters most
		}
		add(failed)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// bouncedError rebuilds the typed error a worker bounced a job with: a
// known code (else internal), a message cut to maxBounceMessage bytes,
// Retry-After within 0…maxRetryAfter and a provider status 100…599.
func bouncedError(h nats.Header) *schema.Error {
	code := h.Get(schema.HeaderErrorCode)
	if !knownCode(code) {
		code = schema.CodeInternal
	}
	e := schema.NewError(code, cut(h.Get(schema.HeaderErrorMessage), maxBounceMessage))
	if ms, err := strconv.ParseInt(h.Get(schema.HeaderRetryAfterMs), 10, 64); err == nil && ms > 0 {
		e.RetryAfterMs = min(ms, maxRetryAfter.Milliseconds())
	}
	if st, err := strconv.Atoi(h.Get(schema.HeaderProviderStatus)); err == nil && st >= 100 && st <= 599 {
		e.ProviderStatus = st
	}
	return e
}

// knownCode reports whether code is one of schema's error codes: a bounce
// may not add codes to the dispatcher's error counters or to metric
// labels.
func knownCode(code string) bool {
	switch code {
	case schema.CodeBadRequest, schema.CodeUnknownTier, schema.CodePayloadTooLarge, schema.CodeAuthentication,
		schema.CodeNotFound, schema.CodeContextWindowExceeded, schema.CodeContentPolicy, schema.CodeRateLimited,
		schema.CodeOverloaded, schema.CodeNoDeployments, schema.CodeProviderError, schema.CodeConnection,
		schema.CodeTimeout, schema.CodeCancelled, schema.CodeInternal, schema.CodeCoolingDown:
		return true
	}
	return false
}

// cut returns s cut to at most n bytes, between runes.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
