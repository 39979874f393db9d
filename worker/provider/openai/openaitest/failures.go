package openaitest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// APIError is OpenAI's error object, the value of "error" in an error body
// or in an error event of a stream.
type APIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Failure is an HTTP error answer: a status, extra headers, and the error
// object sent as {"error": Error} — or Body as it is, when set (Azure's
// errors are not OpenAI's shape).
type Failure struct {
	Status int
	Header http.Header
	Error  APIError
	Body   any
}

func strp(s string) *string { return &s }

// NewAPIError returns an error object; empty param and code are sent as
// null.
func NewAPIError(message, typ, param, code string) APIError {
	e := APIError{Message: message, Type: typ}
	if param != "" {
		e.Param = strp(param)
	}
	if code != "" {
		e.Code = strp(code)
	}
	return e
}

// BadRequest is a 400 invalid_request_error about param.
func BadRequest(message, param string) Failure {
	return Failure{Status: http.StatusBadRequest, Error: NewAPIError(message, "invalid_request_error", param, "")}
}

// ContextLengthExceeded is the 400 OpenAI answers to a prompt longer than
// the model's window.
func ContextLengthExceeded(window, prompt, completion int) Failure {
	msg := fmt.Sprintf("This model's maximum context length is %d tokens. However, you requested %d tokens "+
		"(%d in the messages, %d in the completion). Please reduce the length of the messages or completion.",
		window, prompt+completion, prompt, completion)
	return Failure{Status: http.StatusBadRequest,
		Error: NewAPIError(msg, "invalid_request_error", "messages", "context_length_exceeded")}
}

// ContentFilter is the 400 Azure OpenAI answers when its content filter
// rejects the prompt.
func ContentFilter() Failure {
	return Failure{Status: http.StatusBadRequest, Error: NewAPIError(
		"The response was filtered due to the prompt triggering the content management policy.",
		"invalid_request_error", "prompt", "content_filter")}
}

// RateLimited is OpenAI's 429 rate_limit_exceeded with Retry-After (whole
// seconds, rounded up) and retry-after-ms headers; retryAfter <= 0 sends
// no headers and only the hint in the message.
func RateLimited(retryAfter time.Duration) Failure {
	hint := retryAfter
	if hint <= 0 {
		hint = 2 * time.Second
	}
	f := Failure{Status: http.StatusTooManyRequests, Header: http.Header{}, Error: NewAPIError(
		fmt.Sprintf("Rate limit reached on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in %s.", hint),
		"requests", "", "rate_limit_exceeded")}
	if retryAfter > 0 {
		f.Header.Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
		f.Header.Set("Retry-After-Ms", strconv.FormatInt(retryAfter.Milliseconds(), 10))
	}
	return f
}

// InsufficientQuota is the 429 OpenAI answers when the account is out of
// credit; no retry helps, and it sends no Retry-After.
func InsufficientQuota() Failure {
	return Failure{Status: http.StatusTooManyRequests, Error: NewAPIError(
		"You exceeded your current quota, please check your plan and billing details.",
		"insufficient_quota", "", "insufficient_quota")}
}

// ServerError is a 5xx server_error (500, 502, 503, ...).
func ServerError(status int) Failure {
	msg := "The server had an error while processing your request."
	if status == http.StatusServiceUnavailable {
		msg = "The engine is currently overloaded, please try again later."
	}
	return Failure{Status: status, Error: NewAPIError(msg, "server_error", "", "")}
}

// ModelNotFound is the 404 for a model the server does not serve.
func ModelNotFound(model string) Failure {
	return Failure{Status: http.StatusNotFound, Error: NewAPIError(
		fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model),
		"invalid_request_error", "", "model_not_found")}
}
