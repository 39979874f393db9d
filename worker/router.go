package worker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
)

// Router features a worker takes part in (LiteLLM's router settings):
// tags and the context window it reports in heartbeats, pre-call checks,
// retries of a call on the same deployment, and the options FromDeployment
// reads for them.

// DefaultLatencyTTL is how long latency samples count when
// routing_strategy_args.ttl is unset: LiteLLM's default, 1 h.
const DefaultLatencyTTL = time.Hour

// checkRouterConfig validates and defaults the router fields of cfg.
func checkRouterConfig(cfg *Config) error {
	if len(cfg.Tags) > schema.MaxTags {
		return fmt.Errorf("%d tags: a heartbeat carries at most %d", len(cfg.Tags), schema.MaxTags)
	}
	for _, t := range cfg.Tags {
		if t == "" || len(t) > schema.MaxTagLen {
			return fmt.Errorf("tag %.80q: want 1 to %d bytes", t, schema.MaxTagLen)
		}
	}
	if cfg.MaxInputTokens < 0 || cfg.MaxInputTokens > broker.MaxInputTokens {
		return fmt.Errorf("max input tokens %d: want 0 to %d", cfg.MaxInputTokens, broker.MaxInputTokens)
	}
	cfg.MaxRetries = max(cfg.MaxRetries, 0)
	if cfg.LatencyTTL <= 0 {
		cfg.LatencyTTL = DefaultLatencyTTL
	}
	return nil
}

// PromptTokens estimates a request's prompt tokens cheaply, without a
// tokenizer: the characters (runes) of every message's content and name,
// divided by 4 and rounded up, plus 3 per message and 3 for the reply's
// priming (OpenAI's chat overhead, as LiteLLM's token_counter counts it).
// Four characters a token is OpenAI's rule of thumb for English; code and
// other languages run denser, so the estimate errs low there and the
// provider's own context_window_exceeded remains the last word.
//
// An embedding job's estimate is its input texts' characters divided by
// 4, with no overhead.
func PromptTokens(req *schema.Request) int {
	if req.IsEmbedding() {
		return (inputChars(req) + 3) / 4
	}
	chars := 0
	for i := range req.Messages {
		m := &req.Messages[i]
		chars += messageChars(m) + utf8.RuneCountInString(m.Name)
	}
	return (chars+3)/4 + 3*len(req.Messages) + 3
}

// messageChars counts the characters of a message's text (its text
// parts, when it has an image) and of its tool calls' names and
// arguments. Images count nothing: their tokens depend on the provider.
func messageChars(m *schema.Message) int {
	n := 0
	if m.Parts == nil {
		n = utf8.RuneCountInString(string(m.Content))
	} else {
		for _, p := range m.Parts {
			n += utf8.RuneCountInString(p.Text)
		}
	}
	for _, tc := range m.ToolCalls {
		n += utf8.RuneCountInString(tc.Function.Name) + utf8.RuneCountInString(tc.Function.Arguments)
	}
	return n
}

// inputChars counts the characters of an embedding job's texts.
func inputChars(req *schema.Request) int {
	n := 0
	for _, s := range req.Input {
		n += utf8.RuneCountInString(s)
	}
	return n
}

// precall runs the pre-call check (router_settings.enable_pre_call_checks)
// on a decoded job and reports whether it refused it: a prompt over the
// deployment's window is answered context_window_exceeded before any call
// (LiteLLM's "No models have context window large enough" when no other
// deployment fits). A job that came through a dispatcher is bounced with
// the estimate (schema.HeaderPromptTokens), so that the dispatcher sends
// it to a deployment with a larger window, else to the tier's
// context_window_fallbacks. A refusal is the job's fault, not the
// deployment's: it counts toward no cooldown.
func (w *Worker) precall(c *call, req *schema.Request) bool {
	limit := w.cfg.MaxInputTokens
	if limit <= 0 {
		return false
	}
	n := PromptTokens(req)
	if n <= limit {
		return false
	}
	e := schema.Errorf(schema.CodeContextWindowExceeded,
		"pre-call check: the prompt is about %d tokens (characters/4), over the %d of deployment %s of tier %q (max_input_tokens)",
		n, limit, w.cfg.Deployment, w.cfg.Tier)
	if c.from != "" {
		b := broker.BounceMsg(w.cfg.Subjects.Retry(), c.m, e, w.cfg.Tier, w.cfg.Deployment)
		b.Header[schema.HeaderPromptTokens] = []string{strconv.Itoa(n)}
		if err := w.nc.PublishMsg(b); err == nil {
			w.jobFailed(e.Code)
			w.log.Debug("job refused by the pre-call check", "prompt_tokens", n, "max_input_tokens", limit)
			return true
		}
	}
	w.replyError(c.m, c.codec, e)
	return true
}

// Waits between the calls MaxRetries makes: the OpenAI client's (0.5 s
// doubling to 8 s, less up to a quarter at random), or the provider's
// Retry-After when it gives one of at most maxSameCallRetryAfter.
const (
	sameCallInitial       = 500 * time.Millisecond
	sameCallMax           = 8 * time.Second
	maxSameCallRetryAfter = time.Minute
)

// call makes a non-streamed provider call, and makes it again up to
// MaxRetries times (litellm_params.max_retries: the provider client's own
// retries, on the same deployment) while it fails with a retryable error
// — rate_limited, provider_error, connection_error, or a 408 — and the
// wait before the next call ends before ctx does. Only the last outcome
// is reported, and counts toward a cooldown, as in LiteLLM, whose router
// sees a call only after its client's retries.
func (w *Worker) call(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	return retried(w, ctx, func() (*schema.Response, error) { return w.cfg.Provider.Complete(ctx, req) })
}

// retried makes call, and makes it again as call (above) describes.
func retried[T any](w *Worker, ctx context.Context, call func() (T, error)) (T, error) {
	resp, err := call()
	for i := 0; err != nil && i < w.cfg.MaxRetries && ctx.Err() == nil; i++ {
		e := schema.AsError(err)
		if !sameCallRetryable(e) || e.RetryAfter() > maxSameCallRetryAfter {
			break
		}
		wait := min(sameCallInitial<<i, sameCallMax)
		wait -= time.Duration(rand.Int64N(int64(wait/4) + 1))
		if ra := e.RetryAfter(); ra > 0 {
			wait = ra
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return resp, err
		}
		w.log.Debug("calling the provider again", "code", e.Code, "retry", i+1, "of", w.cfg.MaxRetries)
		resp, err = call()
	}
	return resp, err
}

// sameCallRetryable reports whether a failed call is worth making again
// on the same deployment (what the OpenAI client retries: 408, 429, 5xx
// and connection failures).
func sameCallRetryable(e *schema.Error) bool {
	switch e.Code {
	case schema.CodeRateLimited, schema.CodeProviderError, schema.CodeConnection:
		return true
	case schema.CodeTimeout:
		return e.ProviderStatus == 408
	}
	return false
}

// routerOptions sets the router options of a deployment's worker config
// from the deployment and the router settings: its tags, pre-call window
// (with enable_pre_call_checks), max_retries, cooldown_time and the
// router's allowed_fails_policy, default_max_parallel_requests and
// latency window (routing_strategy_args ttl, max_latency_list_size).
func routerOptions(cfg *Config, d *config.Deployment, rs *config.RouterSettings) error {
	p := d.LitellmParams
	cfg.Tags = p.Tags
	if p.MaxRetries != nil {
		cfg.MaxRetries = *p.MaxRetries
	}
	if rs != nil {
		if rs.EnablePreCallChecks {
			cfg.MaxInputTokens, _ = d.InputWindow()
		}
		if len(rs.AllowedFailsPolicy) > 0 {
			cfg.Cooldown.AllowedFailsPolicy = rs.AllowedFailsPolicy
		}
		if p.MaxParallelRequests <= 0 && rs.DefaultMaxParallelRequests > 0 {
			cfg.Concurrency = min(rs.DefaultMaxParallelRequests, broker.MaxCapacity)
		}
		cfg.LatencyTTL = rs.RoutingStrategyArgs.TTL.D()
		cfg.LatencyWindow = rs.RoutingStrategyArgs.MaxLatencyListSize
	}
	if p.CooldownTime != nil && p.CooldownTime.D() > 0 {
		cfg.Cooldown.Time = p.CooldownTime.D()
	}
	probe := *cfg
	return checkRouterConfig(&probe)
}
