package worker_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// script is a strict fake provider: call n returns outcomes[n] (an error,
// or nil for a reply), and fails the test past its script.
type script struct {
	t     *testing.T
	mu    sync.Mutex
	out   []error
	calls atomic.Int64
}

func (s *script) Complete(_ context.Context, req *schema.Request) (*schema.Response, error) {
	n := int(s.calls.Add(1)) - 1
	s.mu.Lock()
	defer s.mu.Unlock()
	if n >= len(s.out) {
		s.t.Errorf("call %d past the script of %d", n+1, len(s.out))
		return nil, schema.NewError(schema.CodeInternal, "unscripted call")
	}
	if s.out[n] != nil {
		return nil, s.out[n]
	}
	return text("ok", 1, 1), nil
}

func providerErr(status int) error {
	e := schema.Errorf(schema.CodeProviderError, "upstream %d", status)
	e.ProviderStatus = status
	return e
}

func rateLimit() error { return schema.NewError(schema.CodeRateLimited, "slow down") }

// fromConfig builds the worker config of each deployment of a config file
// as `llmq up` does, with the provider replaced by p(i).
func (e *env) fromConfig(src string, p func(i int) *script, mod ...func(*worker.Config)) []*worker.Worker {
	e.t.Helper()
	cfg, err := config.Parse([]byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*worker.Worker
	for i := range cfg.ModelList {
		wc, err := worker.FromDeployment(&cfg.ModelList[i], &cfg.RouterSettings)
		if err != nil {
			e.t.Fatal(err)
		}
		wc.Provider = p(i)
		out = append(out, e.worker(wc.Provider, append([]func(*worker.Config){func(c *worker.Config) {
			prov := c.Provider
			*c = wc
			c.Provider, c.Conn, c.Subjects, c.HeartbeatInterval, c.Logger = prov, e.srv.Connect("worker"), e.subjects, time.Hour, quiet()
		}}, mod...)...))
	}
	return out
}

// fail sends a job straight to w and checks it fails with code.
func (e *env) fail(w *worker.Worker, code string) {
	e.t.Helper()
	if got := decodeError(e.t, e.request(job(e.t, w, ask("x")))); got.Code != code {
		e.t.Fatalf("error %s (%s), want %s", got.Code, got.Message, code)
	}
}

func cooling(w *worker.Worker) bool { until, _ := w.Cooling(); return !until.IsZero() }

// allowed_fails_policy gives each error class its own allowance, with
// LiteLLM's rule: more failures in the minute than the class allows rest
// the deployment. A class the policy does not name keeps allowed_fails.
func TestWorker_AllowedFailsPolicy_PerErrorClass(t *testing.T) {
	t.Parallel()
	e := setup(t)
	scripts := []*script{
		{t: t, out: []error{rateLimit(), rateLimit(), rateLimit()}},
		{t: t, out: []error{providerErr(500)}},
		{t: t, out: []error{providerErr(502), providerErr(502)}},
	}
	ws := e.fromConfig(`model_list:
  - {model_name: tier1, litellm_params: {model: sim/a}, model_info: {id: limited}}
  - {model_name: tier1, litellm_params: {model: sim/b}, model_info: {id: fragile}}
  - {model_name: tier1, litellm_params: {model: sim/c}, model_info: {id: gateway}}
router_settings:
  allowed_fails: 2
  cooldown_time: 3600
  allowed_fails_policy:
    RateLimitErrorAllowedFails: 2
    InternalServerErrorAllowedFails: 0
`, func(i int) *script { return scripts[i] })
	limited, fragile, gateway := ws[0], ws[1], ws[2]

	// Rate limits: two are allowed (without the policy one rests it).
	for i := range 2 {
		e.fail(limited, schema.CodeRateLimited)
		if cooling(limited) {
			t.Fatalf("rests after %d rate limits; the policy allows 2", i+1)
		}
	}
	e.fail(limited, schema.CodeRateLimited)
	if until, reason := limited.Cooling(); until.IsZero() || reason != schema.CodeRateLimited {
		t.Fatalf("not resting after 3 rate limits (allowed 2): %v %q", until, reason)
	}
	// A 500 is allowed none: the first rests it.
	e.fail(fragile, schema.CodeProviderError)
	if !cooling(fragile) {
		t.Fatal("a 500 with InternalServerErrorAllowedFails: 0 did not rest the deployment")
	}
	// A 502 is BadGateway, which the policy does not name: allowed_fails
	// (2, llmq's rule: the second rests it) applies.
	e.fail(gateway, schema.CodeProviderError)
	if cooling(gateway) {
		t.Fatal("one 502 rested the deployment: BadGateway is not InternalServerError")
	}
	e.fail(gateway, schema.CodeProviderError)
	if !cooling(gateway) {
		t.Fatal("two 502s with allowed_fails 2 did not rest the deployment")
	}
}

// cooldown_time in litellm_params replaces the router's for that
// deployment; disable_cooldowns turns rests off.
func TestWorker_CooldownTimePerDeployment_AndDisableCooldowns(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ws := e.fromConfig(`model_list:
  - {model_name: tier1, litellm_params: {model: sim/a}, model_info: {id: router-time}}
  - {model_name: tier1, litellm_params: {model: sim/b, cooldown_time: 3600}, model_info: {id: own-time}}
router_settings:
  cooldown_time: 60
`, func(int) *script { return &script{t: t, out: []error{rateLimit()}} })
	for _, w := range ws {
		e.fail(w, schema.CodeRateLimited)
	}
	short, _ := ws[0].Cooling()
	long, _ := ws[1].Cooling()
	if short.IsZero() || long.IsZero() {
		t.Fatalf("rests until %v and %v: each rate limit should rest its deployment", short, long)
	}
	if d := time.Until(short); d > 2*time.Minute {
		t.Errorf("router cooldown_time 60 s: rests %v", d)
	}
	if d := time.Until(long); d < 10*time.Minute {
		t.Errorf("deployment cooldown_time 3600 s: rests only %v", d)
	}

	off := e.fromConfig(`model_list:
  - {model_name: tier1, litellm_params: {model: sim/a}}
router_settings:
  allowed_fails: 1
  disable_cooldowns: true
`, func(int) *script {
		return &script{t: t, out: []error{rateLimit(), providerErr(500), schema.NewError(schema.CodeAuthentication, "bad key")}}
	})[0]
	for _, code := range []string{schema.CodeRateLimited, schema.CodeProviderError, schema.CodeAuthentication} {
		e.fail(off, code)
		if cooling(off) || off.Heartbeat().CoolingUntilMs != 0 {
			t.Fatalf("disable_cooldowns: rests after %s", code)
		}
	}
}

// max_retries makes the call again on the same deployment; only the last
// outcome is reported and counted toward a rest.
func TestWorker_MaxRetries_CallsAgainOnTheSameDeployment(t *testing.T) {
	t.Parallel()
	e := setup(t)
	busy := func() error {
		err := providerErr(503)
		err.(*schema.Error).RetryAfterMs = 5 // the wait between calls: short, from the provider
		return err
	}
	ok := &script{t: t, out: []error{busy(), busy(), nil}}
	short := &script{t: t, out: []error{busy(), busy()}}
	hard := &script{t: t, out: []error{schema.NewError(schema.CodeBadRequest, "no")}}
	scripts := []*script{ok, short, hard}
	ws := e.fromConfig(`model_list:
  - {model_name: tier1, litellm_params: {model: sim/a, max_retries: 2}}
  - {model_name: tier1, litellm_params: {model: sim/b, max_retries: 1}}
  - {model_name: tier1, litellm_params: {model: sim/c, max_retries: 3}}
router_settings:
  allowed_fails: 2
`, func(i int) *script { return scripts[i] })
	if resp := decodeResponse(t, e.request(job(t, ws[0], ask("x")))); resp.Text() != "ok" || ok.calls.Load() != 3 {
		t.Fatalf("max_retries 2: text %q after %d calls, want ok after 3", resp.Text(), ok.calls.Load())
	}
	e.fail(ws[1], schema.CodeProviderError)
	if n := short.calls.Load(); n != 2 {
		t.Fatalf("max_retries 1: %d calls, want 2", n)
	}
	if cooling(ws[1]) {
		t.Fatal("two failed calls of one attempt counted twice toward allowed_fails 2")
	}
	e.fail(ws[2], schema.CodeBadRequest)
	if n := hard.calls.Load(); n != 1 {
		t.Fatalf("bad_request called again: %d calls", n)
	}
}

// enable_pre_call_checks: a prompt over the deployment's window is refused
// before any call, and the deployment does not rest for it.
func TestWorker_PreCallCheck_RefusesAPromptOverTheWindow(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &script{t: t, out: []error{nil}}
	w := e.fromConfig(`model_list:
  - {model_name: tier1, litellm_params: {model: sim/a}, model_info: {max_input_tokens: 100}}
router_settings:
  enable_pre_call_checks: true
  allowed_fails: 1
`, func(int) *script { return p })[0]
	if hb := w.Heartbeat(); hb.MaxInputTokens != 100 {
		t.Fatalf("beat max_input_tokens = %d, want 100", hb.MaxInputTokens)
	}
	got := decodeError(t, e.request(job(t, w, ask(strings.Repeat("word ", 100)))))
	if got.Code != schema.CodeContextWindowExceeded || !strings.Contains(got.Message, "max_input_tokens") {
		t.Fatalf("error %+v, want context_window_exceeded", got)
	}
	if p.calls.Load() != 0 || cooling(w) {
		t.Fatalf("provider called %d times, cooling %v", p.calls.Load(), cooling(w))
	}
	if resp := decodeResponse(t, e.request(job(t, w, ask("short")))); resp.Text() != "ok" {
		t.Fatalf("short prompt: %q", resp.Text())
	}
}

func TestPromptTokens_CharactersOverFour(t *testing.T) {
	t.Parallel()
	req := &schema.Request{Messages: []schema.Message{
		{Role: "system", Content: "abcdefgh"},         // 8
		{Role: "user", Content: "日本語の文", Name: "bob"}, // 5 + 3
	}}
	if got := worker.PromptTokens(req); got != (16+3)/4+3*2+3 {
		t.Fatalf("PromptTokens = %d", got)
	}
}

// Tags, the pre-call window and default_max_parallel_requests reach the
// worker and its beats; latency samples older than ttl are forgotten.
func TestWorker_RouterOptions_InBeatsAndLatencyTTL(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ws := e.fromConfig(`model_list:
  - {model_name: tier1, litellm_params: {model: openai/gpt-4o-mini, api_key: k, tags: [paid, default]}}
  - {model_name: tier1, litellm_params: {model: sim/b, max_parallel_requests: 3}}
router_settings:
  enable_pre_call_checks: true
  default_max_parallel_requests: 7
  routing_strategy_args: {ttl: 0.05}
`, func(int) *script { return &script{t: t, out: []error{nil}} })
	hb := ws[0].Heartbeat()
	if !slices.Equal(hb.Tags, []string{"paid", "default"}) || hb.MaxInputTokens != 128000 || hb.Capacity != 7 {
		t.Fatalf("beat tags %q, max_input_tokens %d, capacity %d; want [paid default], 128000 (the table's gpt-4o-mini), 7", hb.Tags, hb.MaxInputTokens, hb.Capacity)
	}
	if hb := ws[1].Heartbeat(); hb.Capacity != 3 || hb.MaxInputTokens != 0 || hb.Tags != nil {
		t.Fatalf("second beat: capacity %d, max_input_tokens %d, tags %q", hb.Capacity, hb.MaxInputTokens, hb.Tags)
	}
	decodeResponse(t, e.request(job(t, ws[1], ask("x"))))
	if hb := ws[1].Heartbeat(); hb.Samples != 1 && hb.Samples != 0 {
		t.Fatalf("samples %d after one call", hb.Samples)
	}
	awaitHeartbeat(t, ws[1], "no latency sample once ttl passed", func(hb schema.Heartbeat) bool { return hb.Samples == 0 && hb.LatencyMs == 0 })
}
