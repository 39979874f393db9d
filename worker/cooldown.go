package worker

import (
	"time"

	"github.com/llmq/llmq/schema"
)

// Cooldown rests a deployment after failures, as LiteLLM's router does:
// AllowedFails failures within a minute, or one rate limit, and the
// deployment takes no jobs for Time (or the provider's Retry-After, when
// longer). The worker reports the rest in its heartbeats; dispatchers route
// around it (except that a tier with one deployment is not rested on rate
// limits alone). The zero value cools after 3 failures for 5 s.
type Cooldown struct {
	// AllowedFails within a minute before a rest. Default 3.
	AllowedFails int
	// Time of a rest. Default 5 s.
	Time time.Duration
	// Disabled turns cooldowns off.
	Disabled bool
	// AllowedFailsPolicy, keyed by LiteLLM's allowed_fails_policy names
	// (RateLimitErrorAllowedFails, ...; see policyClass), gives a failure
	// of that class its own allowance: the deployment rests when the
	// failures in the last minute, of any class and this one included,
	// are more than it (LiteLLM's rule; 0 rests on the first). A rate
	// limit then rests only so. Classes it does not name keep the rule
	// above.
	AllowedFailsPolicy map[string]int
}

// cooling reports whether a failure counts toward AllowedFails (LiteLLM
// cools on 429, 401, 404, 408 and 5xx). Exactly these outcomes of a
// provider call count, once per attempt:
//
//   - rate_limited (one is enough to rest the deployment);
//   - authentication, not_found: the deployment's key or model is wrong;
//   - provider_error, connection_error: the provider failed or could not
//     be reached (including a stream it cut midway);
//   - timeout, only the deployment's own: its timeout or stream_timeout
//     ended the call before the job's deadline, or the provider answered
//     408.
//
// Nothing else counts. In particular not the producer's deadline passing,
// before or during the call (Llmq-Deadline/Llmq-Timeout shorter than the
// deployment's time-out: the job ran out of time, the deployment did not
// fail; the worker answers timeout and never calls coolFail, see
// call.expired); nor a producer cancelling its stream or going away, the
// worker stopping (cancelled), the job's own faults (bad_request,
// context_window_exceeded, content_policy), a reply over the size llmq
// reads (payload_too_large), or the worker's own refusals (overloaded,
// no_deployments, a job it drops).
func cooling(code string) bool {
	switch code {
	case schema.CodeRateLimited, schema.CodeAuthentication, schema.CodeNotFound,
		schema.CodeTimeout, schema.CodeProviderError, schema.CodeConnection:
		return true
	}
	return false
}

// cooldown is a worker's failure record. Guarded by the worker's mu.
type cooldown struct {
	fails  []time.Time // within the last minute
	until  time.Time
	reason string
}

// fail records a failure at now and reports whether it started a rest.
func (c *cooldown) fail(cfg Cooldown, e *schema.Error, now time.Time) bool {
	if cfg.Disabled || !cooling(e.Code) {
		return false
	}
	allowed, rest := cfg.AllowedFails, cfg.Time
	if allowed <= 0 {
		allowed = 3
	}
	if rest <= 0 {
		rest = 5 * time.Second
	}
	kept := c.fails[:0]
	for _, t := range c.fails {
		if now.Sub(t) < time.Minute {
			kept = append(kept, t)
		}
	}
	c.fails = append(kept, now)
	if n, ok := cfg.AllowedFailsPolicy[policyClass(e)]; ok {
		if len(c.fails) <= max(n, 0) {
			return false
		}
	} else if e.Code != schema.CodeRateLimited && len(c.fails) < allowed {
		return false
	}
	rest = max(rest, e.RetryAfter())
	if until := now.Add(rest); until.After(c.until) {
		c.until, c.reason = until, e.Code
		c.fails = c.fails[:0]
		return true
	}
	return false
}

// state returns the rest in force at now (Unix ms, 0 for none) and why.
func (c *cooldown) state(now time.Time) (int64, string) {
	if now.Before(c.until) {
		return c.until.UnixMilli(), c.reason
	}
	return 0, ""
}

// policyClass is the LiteLLM allowed_fails_policy key of a failure that
// counts toward a rest (see cooling), or "" (connection errors: LiteLLM's
// APIConnectionError has no key). Provider errors split by status as
// LiteLLM's exceptions do: 502 BadGateway, 503 ServiceUnavailable, any
// other InternalServer.
func policyClass(e *schema.Error) string {
	switch e.Code {
	case schema.CodeRateLimited:
		return "RateLimitErrorAllowedFails"
	case schema.CodeAuthentication:
		return "AuthenticationErrorAllowedFails"
	case schema.CodeNotFound:
		return "NotFoundErrorAllowedFails"
	case schema.CodeTimeout:
		return "TimeoutErrorAllowedFails"
	case schema.CodeProviderError:
		switch e.ProviderStatus {
		case 502:
			return "BadGatewayErrorAllowedFails"
		case 503:
			return "ServiceUnavailableErrorAllowedFails"
		}
		return "InternalServerErrorAllowedFails"
	}
	return ""
}
