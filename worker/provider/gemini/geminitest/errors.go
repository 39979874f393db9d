package geminitest

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strconv"
)

// Failure is a documented Gemini error: an HTTP status and the body
// {"error":{"code","message","status","details"}}.
type Failure struct {
	// HTTPStatus is the HTTP status code (and error.code), e.g. 429.
	HTTPStatus int
	// Status is the google.rpc status name, e.g. "RESOURCE_EXHAUSTED".
	Status string
	// Message is error.message.
	Message string
	// Reason, when set, adds a google.rpc.ErrorInfo detail with that reason
	// (e.g. "API_KEY_INVALID").
	Reason string
	// RetryDelay, when set, adds a google.rpc.RetryInfo detail with that
	// retryDelay (a Duration such as "13s").
	RetryDelay string
	// RetryAfter, when > 0, is sent as a Retry-After header in seconds.
	RetryAfter int
}

// The google.rpc detail type URLs the fake writes.
const (
	typeErrorInfo  = "type.googleapis.com/google.rpc.ErrorInfo"
	typeRetryInfo  = "type.googleapis.com/google.rpc.RetryInfo"
	typeBadRequest = "type.googleapis.com/google.rpc.BadRequest"
	typeHelp       = "type.googleapis.com/google.rpc.Help"
)

// InvalidArgument is a 400 INVALID_ARGUMENT with the given message.
func InvalidArgument(message string) *Failure {
	return &Failure{HTTPStatus: http.StatusBadRequest, Status: "INVALID_ARGUMENT", Message: message}
}

// FailedPrecondition is the 400 FAILED_PRECONDITION the API answers where
// the free tier is not offered.
func FailedPrecondition() *Failure {
	return &Failure{HTTPStatus: http.StatusBadRequest, Status: "FAILED_PRECONDITION",
		Message: "User location is not supported for the API use."}
}

// InvalidKey is the API's answer to a wrong key: 400 INVALID_ARGUMENT with
// an ErrorInfo reason API_KEY_INVALID.
func InvalidKey() *Failure {
	return &Failure{HTTPStatus: http.StatusBadRequest, Status: "INVALID_ARGUMENT",
		Message: "API key not valid. Please pass a valid API key.", Reason: "API_KEY_INVALID"}
}

// MissingKey is the API's answer to a call without a key: 403
// PERMISSION_DENIED.
func MissingKey() *Failure {
	return &Failure{HTTPStatus: http.StatusForbidden, Status: "PERMISSION_DENIED",
		Message: "Method doesn't allow unregistered callers (callers without established identity). " +
			"Please use API Key or other form of API consumer identity to call this API."}
}

// PermissionDenied is a 403 PERMISSION_DENIED for a key without access.
func PermissionDenied() *Failure {
	return &Failure{HTTPStatus: http.StatusForbidden, Status: "PERMISSION_DENIED",
		Message: "The caller does not have permission"}
}

// ModelNotFound is the 404 NOT_FOUND for an unknown model.
func ModelNotFound(model string) *Failure {
	return &Failure{HTTPStatus: http.StatusNotFound, Status: "NOT_FOUND",
		Message: "models/" + model + " is not found for API version v1beta, or is not supported for " +
			"generateContent. Call ListModels to see the list of available models and their supported methods."}
}

// TooManyTokens is the 400 INVALID_ARGUMENT for a prompt longer than the
// model's input limit.
func TooManyTokens(count, limit int) *Failure {
	return InvalidArgument(fmt.Sprintf("The input token count (%d) exceeds the maximum number of tokens allowed (%d).", count, limit))
}

// RateLimited is a 429 RESOURCE_EXHAUSTED; retryDelay ("13s"), when not
// empty, goes in a RetryInfo detail as the API sends it.
func RateLimited(retryDelay string) *Failure {
	return &Failure{HTTPStatus: http.StatusTooManyRequests, Status: "RESOURCE_EXHAUSTED",
		Message:    "You exceeded your current quota, please check your plan and billing details.",
		RetryDelay: retryDelay}
}

// Internal is a 500 INTERNAL.
func Internal() *Failure {
	return &Failure{HTTPStatus: http.StatusInternalServerError, Status: "INTERNAL",
		Message: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"}
}

// Unavailable is a 503 UNAVAILABLE.
func Unavailable() *Failure {
	return &Failure{HTTPStatus: http.StatusServiceUnavailable, Status: "UNAVAILABLE",
		Message: "The model is overloaded. Please try again later."}
}

// DeadlineExceeded is a 504 DEADLINE_EXCEEDED.
func DeadlineExceeded() *Failure {
	return &Failure{HTTPStatus: http.StatusGatewayTimeout, Status: "DEADLINE_EXCEEDED",
		Message: "Deadline expired before operation could complete."}
}

// body returns the error body of f.
func (f *Failure) body() errorBody {
	e := apiError{Code: f.HTTPStatus, Message: f.Message, Status: f.Status}
	if f.Reason != "" {
		e.Details = append(e.Details, map[string]any{
			"@type": typeErrorInfo, "reason": f.Reason, "domain": "googleapis.com",
			"metadata": map[string]string{"service": "generativelanguage.googleapis.com"},
		})
	}
	if f.HTTPStatus == http.StatusTooManyRequests {
		e.Details = append(e.Details, map[string]any{
			"@type": typeHelp,
			"links": []map[string]string{{"description": "Learn more about Gemini API quotas",
				"url": "https://ai.google.dev/gemini-api/docs/rate-limits"}},
		})
	}
	if f.RetryDelay != "" {
		e.Details = append(e.Details, map[string]any{"@type": typeRetryInfo, "retryDelay": f.RetryDelay})
	}
	return errorBody{Error: e}
}

// write answers the request with f.
func (f *Failure) write(w http.ResponseWriter) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	writeJSON(w, f.HTTPStatus, f.body())
}

// writeJSON writes v as the API does: indented JSON, UTF-8.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// violation is one field error of a rejected body.
type violation struct {
	Field       string `json:"field,omitempty"`
	Description string `json:"description"`
}

// writeBadRequest is the 400 INVALID_ARGUMENT for malformed JSON: one message
// per violation, and a google.rpc.BadRequest detail listing them.
func writeBadRequest(w http.ResponseWriter, vs []violation) {
	msg := ""
	for i, v := range vs {
		if i > 0 {
			msg += "\n"
		}
		msg += v.Description
	}
	body := errorBody{Error: apiError{
		Code: http.StatusBadRequest, Message: msg, Status: "INVALID_ARGUMENT",
		Details: []any{map[string]any{"@type": typeBadRequest, "fieldViolations": vs}},
	}}
	writeJSON(w, http.StatusBadRequest, body)
}

// writeNotFoundPage is Google's front end's answer to a path no API
// serves: a 404 HTML page, not JSON.
func writeNotFoundPage(w http.ResponseWriter, path string) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=en><title>Error 404 (Not Found)!!1</title>"+
		"<p><b>404.</b> <ins>That’s an error.</ins><p>The requested URL <code>%s</code> was not found on this server. "+
		"<ins>That’s all we know.</ins>\n", html.EscapeString(path))
}
