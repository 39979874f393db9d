package dispatcher

import (
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/llmq/llmq/schema"
)

// Policy is what a dispatcher does when an attempt fails: retry in the
// same tier (elsewhere when it can), then fall back to other tiers, as
// LiteLLM's router settings say. The zero value retries nothing and falls
// back nowhere.
type Policy struct {
	// NumRetries is how many more attempts a retryable failure gets in its
	// tier (rate limited, provider error, connection error, time-out,
	// overloaded). Default 0.
	NumRetries int
	// RetryPolicy overrides NumRetries per error code (see
	// RetryPolicyFromLiteLLM for LiteLLM's keys). Codes that are not
	// retryable (authentication, bad_request, ...) are retried only when
	// listed here.
	RetryPolicy map[string]int
	// RetryAfter is the least wait before a retry. Default 0.
	RetryAfter time.Duration
	// BackoffInitial and BackoffMax shape the exponential back-off between
	// retries (with jitter; a provider's Retry-After wins when longer).
	// Defaults 100 ms and 5 s.
	BackoffInitial, BackoffMax time.Duration
	// Fallbacks maps a tier to the tiers tried, in order, after its
	// retries are spent.
	Fallbacks map[string][]string
	// ContextWindowFallbacks apply instead for context_window_exceeded,
	// ContentPolicyFallbacks for content_policy.
	ContextWindowFallbacks, ContentPolicyFallbacks map[string][]string
	// DefaultFallbacks apply to tiers with no fallbacks of their own.
	DefaultFallbacks []string
	// MaxFallbacks bounds the fallbacks of one job. Default 5.
	MaxFallbacks int
	// DeploymentRetries are deployments' own num_retries, by deployment
	// id: a job failed by one gets that many retries (see retriesFor).
	DeploymentRetries map[string]int
}

// RetryPolicyFromLiteLLM maps LiteLLM's retry_policy keys to llmq's codes.
func RetryPolicyFromLiteLLM(p map[string]int) map[string]int {
	if len(p) == 0 {
		return nil
	}
	keys := map[string][]string{
		"RateLimitErrorRetries":              {schema.CodeRateLimited, schema.CodeOverloaded, schema.CodeCoolingDown},
		"TimeoutErrorRetries":                {schema.CodeTimeout},
		"InternalServerErrorRetries":         {schema.CodeProviderError, schema.CodeConnection},
		"AuthenticationErrorRetries":         {schema.CodeAuthentication},
		"BadRequestErrorRetries":             {schema.CodeBadRequest},
		"ContentPolicyViolationErrorRetries": {schema.CodeContentPolicy},
	}
	out := map[string]int{}
	for k, n := range p {
		for _, code := range keys[k] {
			out[code] = n
		}
	}
	return out
}

func (p *Policy) retries(code string) int {
	if n, ok := p.RetryPolicy[code]; ok {
		return n
	}
	switch code {
	case schema.CodeRateLimited, schema.CodeOverloaded, schema.CodeProviderError, schema.CodeConnection, schema.CodeTimeout, schema.CodeCoolingDown:
		return p.NumRetries
	}
	return 0
}

// backoff is the wait before retry number n (1-based), computed by
// github.com/cenkalti/backoff/v4: exponential from BackoffInitial,
// doubling, with the library's jitter of ±50% around each step, and never
// above BackoffMax; never below RetryAfter or the provider's retryAfter
// either (those floors win over BackoffMax). The caller does not retry
// when the wait would end after the job's deadline.
func (p *Policy) backoff(n int, retryAfter time.Duration) time.Duration {
	initial, maxWait := p.BackoffInitial, p.BackoffMax
	if initial <= 0 {
		initial = 100 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	initial = min(initial, maxWait)
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxInterval(maxWait),
		backoff.WithMaxElapsedTime(0), // the job's deadline bounds retries
	)
	d := initial
	// The interval stops growing at BackoffMax: there is no need to step
	// further than the doublings that take it there.
	for range min(max(n, 1), 64) {
		d = b.NextBackOff()
	}
	return max(min(d, maxWait), retryAfter, p.RetryAfter)
}

// fallbacks returns the tiers a job that failed with code in origin may
// fall back to, in order.
func (p *Policy) fallbacks(origin, code string) []string {
	switch code {
	case schema.CodeContextWindowExceeded:
		if fb, ok := p.ContextWindowFallbacks[origin]; ok {
			return fb
		}
	case schema.CodeContentPolicy:
		if fb, ok := p.ContentPolicyFallbacks[origin]; ok {
			return fb
		}
	case schema.CodeBadRequest, schema.CodeNotFound:
		// The job itself is wrong: another tier would refuse it too.
		return nil
	}
	if fb, ok := p.Fallbacks[origin]; ok {
		return fb
	}
	return p.DefaultFallbacks
}

func (p *Policy) maxFallbacks() int {
	if p.MaxFallbacks <= 0 {
		return 5
	}
	return min(p.MaxFallbacks, maxPolicyCount)
}

// mostRetries is the most retries any error code gets in one tier.
func (p *Policy) mostRetries() int {
	n := p.NumRetries
	for _, v := range p.RetryPolicy {
		n = max(n, v)
	}
	for _, v := range p.DeploymentRetries {
		n = max(n, v)
	}
	return min(max(n, 0), maxPolicyCount)
}

// budget is the most attempts one job may make: every retry in its tier
// and in each tier it may fall back to. A bounce claiming more is
// answered, not retried. (A job sent again because its worker was lost
// also counts an attempt, so such a job may reach its budget early.)
func (p *Policy) budget() int {
	return (p.mostRetries() + 1) * (p.maxFallbacks() + 1)
}

// FallbackMap flattens LiteLLM's list-of-maps fallbacks.
func FallbackMap(list []map[string][]string) map[string][]string {
	if len(list) == 0 {
		return nil
	}
	out := map[string][]string{}
	for _, m := range list {
		for from, to := range m {
			out[from] = append(out[from], to...)
		}
	}
	return out
}
