package schema

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Every failure a producer sees carries one of them; callers
// branch on the code (retries, cooldowns and fallbacks do).
const (
	CodeBadRequest            = "bad_request"             // malformed or invalid job (400)
	CodeUnknownTier           = "unknown_tier"            // no tier of that name (404)
	CodePayloadTooLarge       = "payload_too_large"       // over the NATS max payload (413)
	CodeAuthentication        = "authentication"          // provider refused the key (401/403)
	CodeNotFound              = "not_found"               // provider does not know the model (404)
	CodeContextWindowExceeded = "context_window_exceeded" // prompt longer than the model's window (400)
	CodeContentPolicy         = "content_policy"          // provider refused the content (400)
	CodeRateLimited           = "rate_limited"            // provider asks to slow down (429)
	CodeOverloaded            = "overloaded"              // llmq's queue for the tier is full (429)
	CodeNoDeployments         = "no_deployments"          // no live worker serves the tier (503)
	CodeProviderError         = "provider_error"          // provider failed (5xx) (502)
	CodeConnection            = "connection_error"        // provider unreachable (502)
	CodeTimeout               = "timeout"                 // deadline passed (504)
	CodeCancelled             = "cancelled"               // producer went away (499)
	CodeInternal              = "internal"                // a bug in llmq (500)
)

// Error types, as OpenAI groups errors.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypeRateLimit      = "rate_limit_error"
	TypeAPI            = "api_error"
	TypeTimeout        = "timeout_error"
)

var codeInfo = map[string]struct {
	typ    string
	status int
}{
	CodeBadRequest:            {TypeInvalidRequest, 400},
	CodeUnknownTier:           {TypeInvalidRequest, 404},
	CodePayloadTooLarge:       {TypeInvalidRequest, 413},
	CodeAuthentication:        {TypeAuthentication, 401},
	CodeNotFound:              {TypeInvalidRequest, 404},
	CodeContextWindowExceeded: {TypeInvalidRequest, 400},
	CodeContentPolicy:         {TypeInvalidRequest, 400},
	CodeRateLimited:           {TypeRateLimit, 429},
	CodeOverloaded:            {TypeRateLimit, 429},
	CodeNoDeployments:         {TypeAPI, 503},
	CodeProviderError:         {TypeAPI, 502},
	CodeConnection:            {TypeAPI, 502},
	CodeTimeout:               {TypeTimeout, 504},
	CodeCancelled:             {TypeAPI, 499},
	CodeInternal:              {TypeAPI, 500},
}

// Error is the typed error of every failed job. On the wire it is the body
// {"error":{...}} of a reply whose headers carry the status.
type Error struct {
	Type    string `json:"type" msgpack:"type"`
	Code    string `json:"code" msgpack:"code"`
	Message string `json:"message" msgpack:"message"`
	// Status is an HTTP-like status code (see the Code constants).
	Status int `json:"status" msgpack:"status"`
	// RetryAfterMs, when set, is how long the producer should wait before
	// trying again.
	RetryAfterMs int64 `json:"retry_after_ms,omitempty" msgpack:"retry_after_ms,omitempty"`
	// Provider is the upstream status code, when a provider answered.
	ProviderStatus int `json:"provider_status,omitempty" msgpack:"provider_status,omitempty"`
}

// ErrorBody is the envelope an error travels in.
type ErrorBody struct {
	Error *Error `json:"error" msgpack:"error"`
}

// NewError returns an error of the given code with its type and status.
func NewError(code, message string) *Error {
	info, ok := codeInfo[code]
	if !ok {
		info = codeInfo[CodeInternal]
	}
	return &Error{Type: info.typ, Code: code, Message: message, Status: info.status}
}

// Errorf is NewError with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return NewError(code, fmt.Sprintf(format, args...))
}

// WithRetryAfter sets the retry-after hint and returns e.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	if d > 0 {
		e.RetryAfterMs = d.Milliseconds()
		if e.RetryAfterMs == 0 {
			e.RetryAfterMs = 1
		}
	}
	return e
}

// RetryAfter returns the retry-after hint as a duration.
func (e *Error) RetryAfter() time.Duration { return time.Duration(e.RetryAfterMs) * time.Millisecond }

func (e *Error) Error() string {
	return fmt.Sprintf("llmq %s (%d): %s", e.Code, e.Status, e.Message)
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, schema.NewError(schema.CodeTimeout, "")) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Retryable reports whether another attempt, possibly elsewhere, may
// succeed: rate limits, overload, provider and connection failures and
// time-outs are; bad requests and authentication failures are not.
func (e *Error) Retryable() bool {
	switch e.Code {
	case CodeRateLimited, CodeOverloaded, CodeNoDeployments, CodeProviderError, CodeConnection, CodeTimeout, CodeCoolingDown:
		return true
	}
	return false
}

// AsError returns err as an *Error: itself if it is one (or wraps one),
// otherwise an internal error carrying its message.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return NewError(CodeInternal, err.Error())
}

// CodeOf returns the code of err, or "" when err is not an *Error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
