package anthropictest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Failure is an error answer of the API: an HTTP status and the error body
// {"type":"error","error":{"type":Type,"message":Message}}.
type Failure struct {
	Status  int
	Type    string
	Message string
	// RetryAfter, when set, is sent as the retry-after header (seconds).
	RetryAfter string
}

// Documented returns the failure the API documents for status: 400
// invalid_request_error, 401 authentication_error, 403 permission_error,
// 404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500
// api_error, 529 overloaded_error. Other statuses get api_error.
func Documented(status int) *Failure {
	f := &Failure{Status: status, Type: "api_error", Message: "Internal server error"}
	switch status {
	case http.StatusBadRequest:
		f.Type, f.Message = "invalid_request_error", "There was an issue with the format or content of your request."
	case http.StatusUnauthorized:
		f.Type, f.Message = "authentication_error", "invalid x-api-key"
	case http.StatusForbidden:
		f.Type, f.Message = "permission_error", "Your API key does not have permission to use the specified resource."
	case http.StatusNotFound:
		f.Type, f.Message = "not_found_error", "The requested resource could not be found."
	case http.StatusRequestEntityTooLarge:
		f.Type, f.Message = "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case http.StatusTooManyRequests:
		f.Type, f.Message = "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."
	case 529:
		f.Type, f.Message = "overloaded_error", "Overloaded"
	}
	return f
}

// RateLimited is a 429 rate_limit_error with the given retry-after header
// value (seconds; "" for none).
func RateLimited(retryAfter string) *Failure {
	f := Documented(http.StatusTooManyRequests)
	f.RetryAfter = retryAfter
	return f
}

// Overloaded is a 529 overloaded_error, the API's answer when it is busy,
// and the error event a stream may carry.
func Overloaded() *Failure { return Documented(529) }

// PromptTooLong is the 400 invalid_request_error the API answers a prompt
// longer than the model's context window with.
func PromptTooLong(tokens, maximum int) *Failure {
	return invalid("prompt is too long: %d tokens > %d maximum", tokens, maximum)
}

func invalid(format string, args ...any) *Failure {
	return &Failure{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON of an error answer or error event.
func (f *Failure) errorBody(requestID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type":       "error",
		"error":      map[string]string{"type": f.Type, "message": f.Message},
		"request_id": requestID,
	})
	return b
}

// write answers with f.
func (f *Failure) write(w http.ResponseWriter, requestID string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Request-Id", requestID)
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write(f.errorBody(requestID))
}
