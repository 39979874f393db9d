package cohere

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// maxMessage bounds how much of Cohere's error text goes into an error
// message.
const maxMessage = 512

// wireError is Cohere's error body: {"id": "…", "message": "…"}.
type wireError struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// Statuses Cohere documents beyond the usual ones.
const (
	statusPaymentRequired = http.StatusPaymentRequired // the account's billing limit
	statusBlockedToken    = 498                        // a deny-listed token in the request or reply
)

// statusError classifies an HTTP error answer from its status, headers
// and body; key is masked should the body ever echo it.
func statusError(status int, h http.Header, body []byte, key string) *schema.Error {
	var we wireError
	msg := ""
	if json.Unmarshal(body, &we) == nil && we.Message != "" {
		msg = we.Message
	} else {
		msg = provider.Snippet(body, maxMessage)
	}
	if len(msg) > maxMessage {
		msg = provider.Snippet([]byte(msg), maxMessage)
	}
	if we.ID != "" {
		msg += " (id " + we.ID + ")"
	}
	msg = provider.Redact(msg, key)
	e := provider.StatusError(Name, status, h, msg)
	code := refine(status, we.Message)
	if code == "" || code == e.Code {
		return e
	}
	return provider.Recode(e, code)
}

// refine returns the code Cohere's status or message calls for when the
// HTTP status alone says something else, or "".
func refine(status int, msg string) string {
	m := strings.ToLower(msg)
	switch {
	case status == statusPaymentRequired:
		// The account's billing limit: no retry helps, as with a refused key.
		return schema.CodeAuthentication
	case status == statusBlockedToken:
		return schema.CodeContentPolicy
	case (status == http.StatusBadRequest || status == http.StatusUnprocessableEntity) && contextExceeded(m):
		return schema.CodeContextWindowExceeded
	case (status == http.StatusBadRequest || status == http.StatusUnprocessableEntity) && strings.Contains(m, "usage guidelines"):
		return schema.CodeContentPolicy
	}
	return ""
}

// contextExceeded recognises Cohere's answers to a prompt longer than the
// model's window: "too many tokens: …".
func contextExceeded(m string) bool {
	return strings.Contains(m, "too many tokens") || strings.Contains(m, "context length") ||
		strings.Contains(m, "context window")
}
