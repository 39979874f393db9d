package worker_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

func limited(rpm, tpm int64, window time.Duration) func(*worker.Config) {
	return func(c *worker.Config) { c.RPM, c.TPM, c.RateWindow = rpm, tpm, window }
}

// TestRateLimit_RefusesOverRPMWithoutCooling: a job over the deployment's
// rpm is refused without a provider call, rate_limited with the time until
// the window frees; the refusal is the worker's own, not the provider's,
// and rests nothing.
func TestRateLimit_RefusesOverRPMWithoutCooling(t *testing.T) {
	e := setup(t)
	p := &echo{}
	w := e.worker(p, limited(2, 0, 30*time.Second))
	for i := range 2 {
		decodeResponse(t, e.request(job(t, w, ask("hi"))))
		if n := p.calls.Load(); n != int64(i+1) {
			t.Fatalf("provider calls %d, want %d", n, i+1)
		}
	}
	er := decodeError(t, e.request(job(t, w, ask("hi"))))
	if er.Code != schema.CodeRateLimited || er.RetryAfterMs <= 0 || er.RetryAfterMs > 30_000 {
		t.Fatalf("third job: %s retry-after %d ms, want rate_limited within 30 s", er.Code, er.RetryAfterMs)
	}
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("provider calls %d, want 2: the refused job must not reach it", n)
	}
	if until, reason := w.Cooling(); !until.IsZero() {
		t.Fatalf("the worker's own refusal cooled the deployment (%s until %v)", reason, until)
	}
	hb := w.Heartbeat()
	if hb.RPM != 2 || hb.RPMUsed != 2 || hb.CoolingUntilMs != 0 || hb.RateWindowMs != 30_000 ||
		hb.RateFreesMs < time.Now().UnixMilli() || hb.RateFreesMs > time.Now().Add(30*time.Second).UnixMilli() {
		t.Fatalf("heartbeat: rpm %d used %d window %d frees in %d ms, cooling %d", hb.RPM, hb.RPMUsed, hb.RateWindowMs,
			hb.RateFreesMs-time.Now().UnixMilli(), hb.CoolingUntilMs)
	}
}

// TestRateLimit_BounceIsMarkedRefused: a job from a dispatcher that the
// window refuses goes back to the dispatchers marked Llmq-Refused (no
// attempt made), with the retry-after, and without the deployment resting.
func TestRateLimit_BounceIsMarkedRefused(t *testing.T) {
	e := setup(t)
	p := &echo{}
	w := e.worker(p, limited(1, 0, 30*time.Second))
	retries := make(chan *nats.Msg, 4)
	sub, err := e.nc.ChanSubscribe(e.subjects.Retry(), retries)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	decodeResponse(t, e.request(job(t, w, ask("hi"), schema.HeaderDispatcher, "d-1", schema.HeaderJobSeq, "1")))
	m := job(t, w, ask("hi"), schema.HeaderDispatcher, "d-1", schema.HeaderJobSeq, "2")
	m.Reply = "_INBOX.refused.1"
	if err := e.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	var b *nats.Msg
	select {
	case b = <-retries:
	case <-time.After(wait):
		t.Fatal("no bounce")
	}
	if got := b.Header.Get(schema.HeaderRefused); got != w.ID() {
		t.Fatalf("bounce %s = %q, want the worker's id %q", schema.HeaderRefused, got, w.ID())
	}
	if b.Header.Get(schema.HeaderErrorCode) != schema.CodeRateLimited || b.Header.Get(schema.HeaderRetryAfterMs) == "" {
		t.Fatalf("bounce headers %v", b.Header)
	}
	if p.calls.Load() != 1 {
		t.Fatalf("provider calls %d, want 1", p.calls.Load())
	}
	if until, _ := w.Cooling(); !until.IsZero() {
		t.Fatal("the refusal cooled the deployment")
	}
}

// TestRateLimit_TPMCountsUsage: before a call the job counts for its
// estimate (prompt characters / 4 + max_tokens), after it for the usage
// the provider reported; so jobs whose estimate is high but usage low
// keep running until the usage fills the window.
func TestRateLimit_TPMCountsUsage(t *testing.T) {
	e := setup(t)
	p := &echo{} // usage: 1 + 2 tokens
	w := e.worker(p, limited(0, 20, 30*time.Second))
	ten := 10
	req := ask("12345678") // 2 tokens + max_tokens 10 = 12 estimated
	req.MaxTokens = &ten
	for i := range 3 { // 3, 6, 9 tokens used: 9 + 12 ≤ 20 fits… until 9 + 12 > 20
		decodeResponse(t, e.request(job(t, w, req)))
		if hb := w.Heartbeat(); hb.TPMUsed != int64(3*(i+1)) {
			t.Fatalf("after %d calls tpm_used %d, want %d", i+1, hb.TPMUsed, 3*(i+1))
		}
	}
	if er := decodeError(t, e.request(job(t, w, req))); er.Code != schema.CodeRateLimited || er.RetryAfterMs <= 0 {
		t.Fatalf("fourth job: %v, want rate_limited with a retry-after", er)
	}
	big := 100
	req.MaxTokens = &big
	if er := decodeError(t, e.request(job(t, w, req))); er.Code != schema.CodeRateLimited || er.RetryAfterMs != 0 {
		t.Fatalf("a job over the whole tpm: %v, want rate_limited with no retry-after", er)
	}
	if n := p.calls.Load(); n != 3 {
		t.Fatalf("provider calls %d, want 3", n)
	}
}

// TestRateLimit_BeatsWhenRoomFrees: a worker whose window is full beats
// when a call leaves it, without waiting for its interval (an hour here),
// so dispatchers holding jobs for it learn at once.
func TestRateLimit_BeatsWhenRoomFrees(t *testing.T) {
	e := setup(t)
	beats := e.beats()
	w := e.worker(&echo{}, limited(1, 0, 300*time.Millisecond))
	decodeResponse(t, e.request(job(t, w, ask("hi"))))
	awaitBeat(t, beats, "a full window", func(hb schema.Heartbeat) bool { return hb.RPMUsed == 1 })
	awaitBeat(t, beats, "the window freed", func(hb schema.Heartbeat) bool { return hb.RPMUsed == 0 && hb.RPM == 1 })
}

// TestFromDeployment_CarriesLimitsAndPrices: rpm and tpm (wherever LiteLLM
// reads them) become the worker's limits, and its prices go in beats.
func TestFromDeployment_CarriesLimitsAndPrices(t *testing.T) {
	cfg, err := config.Parse([]byte(`model_list:
  - model_name: tier1
    tpm: 5000
    litellm_params: {model: sim/a, rpm: 60, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	wc, err := worker.FromDeployment(&cfg.ModelList[0], &cfg.RouterSettings)
	if err != nil {
		t.Fatal(err)
	}
	if wc.RPM != 60 || wc.TPM != 5000 || wc.InputCostPerToken != 0.000001 || wc.OutputCostPerToken != 0.000002 {
		t.Fatalf("rpm %d tpm %d prices %v %v", wc.RPM, wc.TPM, wc.InputCostPerToken, wc.OutputCostPerToken)
	}
}
