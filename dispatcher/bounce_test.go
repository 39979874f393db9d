package dispatcher

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

var testRules = bounceRules{
	subjects:       broker.Subjects{Prefix: "llm"},
	policy:         &Policy{NumRetries: 2, RetryPolicy: map[string]int{schema.CodeRateLimited: 4}, MaxFallbacks: 3},
	defaultTimeout: time.Minute,
	maxTimeout:     time.Hour,
}

// realBounce is a bounce as a worker sends it: a job stamped by a
// dispatcher (attempt p.attempts+1), failed with e on deployment dep.
func realBounce(p pending, tierName string, e *schema.Error, dep string) *nats.Msg {
	job := &nats.Msg{Subject: "llm.w.w1", Reply: "_INBOX.abc.1", Header: nats.Header{
		schema.HeaderContentType: {schema.ContentTypeJSON}, schema.HeaderStreaming: {"true"},
	}, Data: []byte(`{}`)}
	p.msg = job
	d := &Dispatcher{idVal: []string{"d-1"}}
	d.stamp(dispatch{p: p, seq: 7, tier: tierName, queued: time.Millisecond})
	return broker.BounceMsg("llm.retry", job, e, tierName, dep)
}

func realBounces(now time.Time) []*nats.Msg {
	dl := now.Add(30 * time.Second)
	return []*nats.Msg{
		realBounce(pending{deadline: dl}, "tier1", schema.NewError(schema.CodeProviderError, "upstream 502"), "dep-a"),
		realBounce(pending{deadline: dl, attempts: 1, tierAttempts: 1, exclude: []string{"dep-a"}}, "tier1",
			schema.NewError(schema.CodeRateLimited, "slow down").WithRetryAfter(2*time.Second), "dep-b"),
		realBounce(pending{deadline: dl, attempts: 3, origin: "tier1", fallbacks: 1}, "tier2",
			&schema.Error{Code: schema.CodeConnection, Message: "refused", ProviderStatus: 503}, "dep-c"),
	}
}

// bounceKeys are the headers parseBounce reads, in FuzzParseBounce's
// argument order (after the reply subject).
var bounceKeys = []string{
	schema.HeaderTier, schema.HeaderOriginTier, schema.HeaderAttempt, schema.HeaderTierAttempts,
	schema.HeaderFallbacks, schema.HeaderExclude, schema.HeaderFailedDeployment, schema.HeaderRetryAfterMs,
	schema.HeaderErrorCode, schema.HeaderErrorMessage, schema.HeaderProviderStatus, schema.HeaderDeadline,
	schema.HeaderTimeout, schema.HeaderRefused,
}

// FuzzParseBounce feeds parseBounce arbitrary values of the headers it
// reads (an empty value is an absent header), seeded with real bounces.
// Run: go test -run '^$' -fuzz '^FuzzParseBounce$' -fuzztime 10s ./dispatcher
//
// Properties: it never panics and does not modify the headers; a refusal
// wraps errBadBounce or errBounceReply; an accepted bounce has a valid tier
// (and origin), every count and time within the bounds parseBounce states,
// and its error a known code.
func FuzzParseBounce(f *testing.F) {
	now := time.Now()
	for _, m := range realBounces(now) {
		v := make([]string, len(bounceKeys))
		for i, k := range bounceKeys {
			v[i] = m.Header.Get(k)
		}
		f.Add(m.Reply, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13])
	}
	f.Add("_INBOX.x", "tier1", "", "-1", "-1000", "-1", strings.Repeat("a,", 100), "", "3600000", "evil", "msg", "99999", "9223372036854775807", "", "")
	f.Add("_INBOX.x", "tier1", "", "", "", "", "dep-a", "dep-a", "250", schema.CodeRateLimited, "at its limit", "", "", "", "dep-a-x1")
	f.Add("_INBOX.x", "tier1", "", "1", "1", "", "", "dep-a", "250", schema.CodeRateLimited, "at its limit", "", "", "", "not.an.id")
	f.Fuzz(func(t *testing.T, reply, tierName, origin, attempt, tierAttempts, fallbacks, exclude, failed, retryAfter, code, message, status, deadline, timeout, refused string) {
		h := nats.Header{}
		for i, v := range []string{tierName, origin, attempt, tierAttempts, fallbacks, exclude, failed, retryAfter, code, message, status, deadline, timeout, refused} {
			if v != "" {
				h[bounceKeys[i]] = []string{v}
			}
		}
		before := maps.Clone(h)
		b, err := parseBounce(h, reply, testRules, now)
		if !maps.EqualFunc(h, before, slices.Equal) {
			t.Fatalf("parseBounce modified the headers: %v, was %v", h, before)
		}
		if b.err == nil || !knownCode(b.err.Code) || len(b.err.Message) > maxBounceMessage ||
			b.err.RetryAfter() < 0 || b.err.RetryAfter() > maxRetryAfter ||
			(b.err.ProviderStatus != 0 && (b.err.ProviderStatus < 100 || b.err.ProviderStatus > 599)) {
			t.Fatalf("bounced error %+v out of bounds", b.err)
		}
		if err != nil {
			if !errors.Is(err, errBadBounce) && !errors.Is(err, errBounceReply) {
				t.Fatalf("refusal %v wraps neither errBadBounce nor errBounceReply", err)
			}
			return
		}
		checkBounce(t, b, now)
	})
}

// checkBounce checks the bounds of an accepted bounce.
func checkBounce(t *testing.T, b bounce, now time.Time) {
	t.Helper()
	p, pol := b.p, testRules.policy
	least := 1
	if b.refused != "" {
		least = 0 // a refusal made no attempt
		if !broker.ValidWorkerID(b.refused) || b.err.Code != schema.CodeRateLimited {
			t.Fatalf("accepted a refusal by %q with code %s", b.refused, b.err.Code)
		}
	}
	switch {
	case !broker.ValidGroup(b.tier), p.origin != "" && !broker.ValidGroup(p.origin):
		t.Fatalf("accepted tier %q origin %q", b.tier, p.origin)
	case p.attempts < least || p.attempts > pol.budget()+1:
		t.Fatalf("attempts %d outside %d…%d", p.attempts, least, pol.budget()+1)
	case p.tierAttempts < least || p.tierAttempts > pol.mostRetries()+1:
		t.Fatalf("tier attempts %d outside %d…%d", p.tierAttempts, least, pol.mostRetries()+1)
	case p.fallbacks < 0 || p.fallbacks > pol.maxFallbacks():
		t.Fatalf("fallbacks %d outside 0…%d", p.fallbacks, pol.maxFallbacks())
	case len(p.exclude) > maxExclude:
		t.Fatalf("%d excluded deployments", len(p.exclude))
	case p.deadline.After(now.Add(testRules.maxTimeout)):
		t.Fatalf("deadline %s past now + %s", p.deadline, testRules.maxTimeout)
	}
	for _, name := range p.exclude {
		if name == "" || len(name) > broker.MaxNameLen || strings.Contains(name, ",") {
			t.Fatalf("excluded deployment %q", name)
		}
	}
	// What fallback does with the counts must not panic.
	list := []string{"a", "b"}
	for i := p.fallbacks; i < len(list) && i < pol.maxFallbacks(); i++ {
		_ = list[i]
	}
}

// TestParseBounce_Refused: a worker's refusal at its usage limit made no
// attempt: the counts are one less than the failed attempt's would be, the
// deployment is not excluded (earlier failures stay), and a marker that is
// no worker id is refused; on a code other than rate_limited it is ignored.
func TestParseBounce_Refused(t *testing.T) {
	t.Parallel()
	now := time.Now()
	dl := now.Add(30 * time.Second)
	first := realBounce(pending{deadline: dl}, "tier1", schema.NewError(schema.CodeRateLimited, "at its limit").WithRetryAfter(time.Second), "dep-a")
	first.Header[schema.HeaderRefused] = []string{"dep-a-x1"}
	b, err := parseBounce(first.Header, first.Reply, testRules, now)
	if err != nil || b.refused != "dep-a-x1" || b.p.attempts != 0 || b.p.tierAttempts != 0 || len(b.p.exclude) != 0 {
		t.Fatalf("first attempt refused: %+v, %v", b.p, err)
	}
	later := realBounce(pending{deadline: dl, attempts: 1, tierAttempts: 1, exclude: []string{"dep-b"}}, "tier1",
		schema.NewError(schema.CodeRateLimited, "at its limit").WithRetryAfter(time.Second), "dep-a")
	later.Header[schema.HeaderRefused] = []string{"dep-a-x1"}
	b, err = parseBounce(later.Header, later.Reply, testRules, now)
	if err != nil || b.p.attempts != 1 || b.p.tierAttempts != 1 || !slices.Equal(b.p.exclude, []string{"dep-b"}) {
		t.Fatalf("second attempt refused: %+v, %v", b.p, err)
	}
	later.Header[schema.HeaderRefused] = []string{"llm.w.>"}
	if _, err := parseBounce(later.Header, later.Reply, testRules, now); !errors.Is(err, errBadBounce) {
		t.Fatalf("a refusal naming no worker id: %v, want errBadBounce", err)
	}
	other := realBounce(pending{deadline: dl}, "tier1", schema.NewError(schema.CodeProviderError, "502"), "dep-a")
	other.Header[schema.HeaderRefused] = []string{"dep-a-x1"}
	if b, err := parseBounce(other.Header, other.Reply, testRules, now); err != nil || b.refused != "" || b.p.attempts != 1 {
		t.Fatalf("a provider_error marked refused: %+v %q, %v; want an ordinary failed attempt", b.p, b.refused, err)
	}
}

func TestParseBounce_RealBounces_ReadAsSent(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ms := realBounces(now)
	want := []struct {
		tier, origin                     string
		attempts, tierAttempts, fallback int
		exclude                          []string
		code                             string
		retryAfter                       time.Duration
	}{
		{"tier1", "", 1, 1, 0, []string{"dep-a"}, schema.CodeProviderError, 0},
		{"tier1", "", 2, 2, 0, []string{"dep-a", "dep-b"}, schema.CodeRateLimited, 2 * time.Second},
		{"tier2", "tier1", 4, 1, 1, []string{"dep-c"}, schema.CodeConnection, 0},
	}
	for i, m := range ms {
		b, err := parseBounce(m.Header, m.Reply, testRules, now)
		if err != nil {
			t.Fatalf("bounce %d: %v", i, err)
		}
		w := want[i]
		if b.tier != w.tier || b.p.origin != w.origin || b.p.attempts != w.attempts || b.p.tierAttempts != w.tierAttempts ||
			b.p.fallbacks != w.fallback || !slices.Equal(b.p.exclude, w.exclude) || b.err.Code != w.code || b.err.RetryAfter() != w.retryAfter {
			t.Fatalf("bounce %d read as tier %q origin %q attempts %d/%d fallbacks %d exclude %v err %+v, want %+v",
				i, b.tier, b.p.origin, b.p.attempts, b.p.tierAttempts, b.p.fallbacks, b.p.exclude, b.err, w)
		}
		if !b.p.deadline.Equal(time.UnixMilli(now.Add(30 * time.Second).UnixMilli())) {
			t.Fatalf("bounce %d: deadline %s", i, b.p.deadline)
		}
	}
}

func TestParseBounce_HostileHeaders_ClampedOrRefused(t *testing.T) {
	t.Parallel()
	now := time.Now()
	pol := testRules.policy
	hdr := func(kv ...string) nats.Header {
		h := nats.Header{schema.HeaderTier: {"tier1"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = []string{kv[i+1]}
		}
		return h
	}
	many := strings.Repeat("dep,", 10_000)
	cases := []struct {
		name  string
		h     nats.Header
		reply string
		bad   error
		check func(b bounce) bool
	}{
		{"negative fallbacks", hdr(schema.HeaderFallbacks, "-1"), "", nil, func(b bounce) bool { return b.p.fallbacks == 0 }},
		{"fallbacks past the most", hdr(schema.HeaderFallbacks, "99"), "", nil, func(b bounce) bool { return b.p.fallbacks == pol.maxFallbacks() }},
		{"negative tier attempts", hdr(schema.HeaderTierAttempts, "-1000"), "", nil, func(b bounce) bool { return b.p.tierAttempts == 1 }},
		{"huge attempts", hdr(schema.HeaderAttempt, "99999999999999999"), "", nil, func(b bounce) bool { return b.p.attempts == pol.budget()+1 }},
		{"hour-long retry-after", hdr(schema.HeaderRetryAfterMs, "3600000"), "", nil, func(b bounce) bool { return b.err.RetryAfter() == maxRetryAfter }},
		{"huge deadline", hdr(schema.HeaderDeadline, "9223372036854775807"), "", nil, func(b bounce) bool { return b.p.deadline.Equal(now.Add(time.Hour)) }},
		{"huge timeout", hdr(schema.HeaderTimeout, "9223372036854775807"), "", nil, func(b bounce) bool { return b.p.deadline.Equal(now.Add(time.Hour)) }},
		{"long exclude list", hdr(schema.HeaderExclude, many, schema.HeaderFailedDeployment, "failed"), "", nil, func(b bounce) bool {
			return len(b.p.exclude) == 2 && b.p.exclude[1] == "failed"
		}},
		{"many excluded names", hdr(schema.HeaderExclude, numbered(1000)), "", nil, func(b bounce) bool { return len(b.p.exclude) == maxExclude }},
		{"unknown error code", hdr(schema.HeaderErrorCode, "evil\ncode"), "", nil, func(b bounce) bool { return b.err.Code == schema.CodeInternal }},
		{"provider status out of range", hdr(schema.HeaderProviderStatus, "-7"), "", nil, func(b bounce) bool { return b.err.ProviderStatus == 0 }},
		{"batch priority kept", hdr(schema.HeaderPriority, schema.PriorityBatch), "", nil, func(b bounce) bool { return b.p.batch }},
		{"no headers", nil, "", errBadBounce, nil},
		{"no tier", nats.Header{schema.HeaderAttempt: {"2"}}, "", errBadBounce, nil},
		{"invalid tier", nats.Header{schema.HeaderTier: {"a b"}}, "", errBadBounce, nil},
		{"tier over the length limit", nats.Header{schema.HeaderTier: {strings.Repeat("t", broker.MaxTierLen+1)}}, "", errBadBounce, nil},
		{"invalid origin tier", hdr(schema.HeaderOriginTier, "x..y"), "", errBadBounce, nil},
		{"attempts not a number", hdr(schema.HeaderAttempt, "two"), "", errBadBounce, nil},
		{"bad deadline", hdr(schema.HeaderDeadline, "soon"), "", errBadBounce, nil},
		{"reply on a system subject", hdr(), "$JS.API.STREAM.DELETE.x", errBounceReply, nil},
		{"reply on llmq's subjects", hdr(), "llm.jobs.tier1", errBounceReply, nil},
		{"reply too long", hdr(), "_INBOX." + strings.Repeat("r", broker.MaxReplyLen), errBounceReply, nil},
	}
	for _, c := range cases {
		reply := c.reply
		if reply == "" {
			reply = "_INBOX.abc.1"
		}
		b, err := parseBounce(c.h, reply, testRules, now)
		if c.bad != nil {
			if !errors.Is(err, c.bad) {
				t.Errorf("%s: err %v, want %v", c.name, err, c.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		checkBounce(t, b, now)
		if !c.check(b) {
			t.Errorf("%s: read as %+v (err %+v)", c.name, b.p, b.err)
		}
	}
}

func numbered(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = "dep" + strconv.Itoa(i)
	}
	return strings.Join(names, ",")
}

func TestProducerHeader_OnlyWhatProducersMaySet(t *testing.T) {
	t.Parallel()
	allowed := []string{
		schema.HeaderContentType, schema.HeaderDeadline, schema.HeaderTimeout, schema.HeaderPriority,
		schema.HeaderDisableFallbacks, schema.HeaderStreaming, "X-Trace-Id", "Nats-Msg-Id", "traceparent",
	}
	internal := []string{
		schema.HeaderTier, schema.HeaderDispatcher, schema.HeaderQueuedUs, schema.HeaderQueueWaitUs, schema.HeaderAttempt, schema.HeaderJobSeq,
		schema.HeaderOriginTier, schema.HeaderTierAttempts, schema.HeaderFallbacks, schema.HeaderExclude,
		schema.HeaderFailedDeployment, schema.HeaderRetryAfterMs, schema.HeaderProviderStatus, schema.HeaderErrorCode,
		schema.HeaderStatus, schema.HeaderErrorMessage, schema.HeaderStream, "llmq-fallbacks", "LLMQ-TIER-ATTEMPTS",
		"Llmq-Anything-New", "llmq-deadline", "nats-service-error-code",
	}
	for _, k := range allowed {
		if !producerHeader(k) {
			t.Errorf("%s refused", k)
		}
	}
	for _, k := range internal {
		if producerHeader(k) {
			t.Errorf("%s allowed", k)
		}
	}
	h := nats.Header{}
	for _, k := range append(allowed, internal...) {
		h[k] = []string{"1"}
	}
	if n := stripInternal(h); n != len(internal) || len(h) != len(allowed) {
		t.Fatalf("stripped %d, kept %v", n, h)
	}
}

func TestStripInternal_AllocatesNothing(t *testing.T) {
	h := nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}, schema.HeaderDeadline: {"1"}, schema.HeaderStreaming: {"true"}}
	if n := testing.AllocsPerRun(100, func() { stripInternal(h) }); n != 0 {
		t.Fatalf("%v allocations per job", n)
	}
}

// TestExcludeList_FailedDeploymentWithComma: found by FuzzParseBounce (its
// corpus keeps the case). A failed deployment whose name holds a comma was
// excluded as it was, and the dispatcher's Llmq-Exclude (comma-separated)
// then named other deployments on the next bounce. Such a name is skipped.
func TestExcludeList_FailedDeploymentWithComma(t *testing.T) {
	t.Parallel()
	if got := excludeList("dep-a", "dep-b,dep-c"); !slices.Equal(got, []string{"dep-a"}) {
		t.Fatalf("excludeList = %q, want only dep-a", got)
	}
}
