package anthropic

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// wireError is Anthropic's error body, {"type":"error","error":{...}}, the
// same in an HTTP answer and in a stream's error event.
type wireError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// maxMessage bounds how much of a provider's error text goes into an
// error message.
const maxMessage = 512

// typeStatus is the HTTP status a documented error type comes with; it
// classifies error events that arrive inside a 200 stream.
func typeStatus(typ string) int {
	switch typ {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "billing_error":
		return http.StatusPaymentRequired
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "timeout_error":
		return http.StatusGatewayTimeout
	case "overloaded_error":
		return 529
	default: // api_error and types added later
		return http.StatusInternalServerError
	}
}

// typeCode is the llmq code of a documented error type, which wins over
// the HTTP status when both are known; "" for an unknown type.
func typeCode(typ string) string {
	switch typ {
	case "invalid_request_error":
		return schema.CodeBadRequest
	case "authentication_error", "billing_error", "permission_error":
		return schema.CodeAuthentication
	case "not_found_error":
		return schema.CodeNotFound
	case "request_too_large":
		return schema.CodePayloadTooLarge
	case "rate_limit_error", "overloaded_error":
		return schema.CodeRateLimited
	case "api_error":
		return schema.CodeProviderError
	case "timeout_error":
		return schema.CodeTimeout
	}
	return ""
}

// statusError classifies an HTTP error answer from its status, headers
// and body. key is masked should the body ever echo it.
func statusError(status int, h http.Header, body []byte, key string) *schema.Error {
	var we wireError
	typ, msg := "", ""
	if json.Unmarshal(body, &we) == nil && (we.Error.Type != "" || we.Error.Message != "") {
		typ, msg = we.Error.Type, we.Error.Message
	} else {
		msg = provider.Snippet(body, maxMessage)
	}
	rid := we.RequestID
	if rid == "" {
		rid = h.Get("Request-Id")
	}
	return classify(status, h, typ, msg, rid, key)
}

// eventError classifies the data of an `event: error` inside a stream.
func eventError(data []byte, key string) *schema.Error {
	var we wireError
	if err := json.Unmarshal(data, &we); err != nil || we.Error.Type == "" {
		return schema.Errorf(schema.CodeProviderError, "anthropic: stream error event: %s",
			provider.Redact(provider.Snippet(data, maxMessage), key))
	}
	return classify(typeStatus(we.Error.Type), nil, we.Error.Type, we.Error.Message, we.RequestID, key)
}

func classify(status int, h http.Header, typ, msg, requestID, key string) *schema.Error {
	text := msg
	if typ != "" {
		text = typ + ": " + msg
	}
	if requestID != "" {
		text += " (request-id " + requestID + ")"
	}
	e := provider.StatusError(Name, status, h, provider.Redact(text, key))
	code := typeCode(typ)
	switch {
	case typ == "invalid_request_error" && contextExceeded(msg):
		code = schema.CodeContextWindowExceeded
	case contentRefused(msg):
		code = schema.CodeContentPolicy
	}
	if code != "" && code != e.Code {
		e = provider.Recode(e, code)
	}
	return e
}

// contextExceeded recognises the messages Anthropic answers a prompt
// longer than the model's window with: "prompt is too long: N tokens > M
// maximum" and "input length and `max_tokens` exceed context limit: …".
func contextExceeded(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "prompt is too long") ||
		strings.Contains(m, "exceed context limit") ||
		strings.Contains(m, "context window")
}

// contentRefused recognises an output blocked by Anthropic's content
// filtering.
func contentRefused(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "content filtering policy") || strings.Contains(m, "output blocked")
}

// errStreamCut is the error of a stream that ended before message_stop.
func errStreamCut(after string) *schema.Error {
	return schema.NewError(schema.CodeConnection, fmt.Sprintf("anthropic: stream ended %s, before message_stop", after))
}
