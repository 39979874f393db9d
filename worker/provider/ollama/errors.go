package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// BusyRetryAfter is the retry-after hint given with Ollama's queue-full
// answer (503 "server busy, please try again.  maximum pending requests
// exceeded"), which carries no Retry-After header.
const BusyRetryAfter = time.Second

// maxMessage bounds how much of a non-JSON error body goes in a message.
const maxMessage = 512

// httpError classifies a non-200 answer: the generic status mapping, then
// what Ollama's {"error": "..."} message says precisely.
func (p *Provider) httpError(resp *http.Response) *schema.Error {
	msg := bodyMessage(provider.ReadErrorBody(resp))
	e := refine(provider.StatusError(Name, resp.StatusCode, resp.Header, msg), msg)
	if resp.StatusCode == http.StatusNotFound {
		if strings.Contains(strings.ToLower(msg), "model") {
			e.Message += fmt.Sprintf(" (host %s)", p.host)
		} else {
			e.Message += fmt.Sprintf(" (no Ollama API at %s: api_base must be the host root, like %s)",
				p.host, DefaultAPIBase)
		}
	}
	return p.clean(e)
}

// bodyError classifies an error that arrived in a 200 answer: a line
// {"error": "..."} inside a stream, or an error body without a status.
// where says which ("stream" or "reply").
func bodyError(where, msg string) *schema.Error {
	return refine(schema.Errorf(schema.CodeProviderError, "%s: error in %s: %s", Name, where, strings.TrimSpace(msg)), msg)
}

// refine overrides the code for what Ollama's message says precisely: a
// full queue is a rate limit (retryable, default retry-after one second),
// an input longer than the context is a context-window error.
func refine(e *schema.Error, msg string) *schema.Error {
	low := strings.ToLower(msg)
	switch {
	case isBusy(low):
		e = withCode(e, schema.CodeRateLimited)
		if e.RetryAfterMs == 0 {
			e.WithRetryAfter(BusyRetryAfter)
		}
	case isContextOverflow(low):
		e = withCode(e, schema.CodeContextWindowExceeded)
	}
	return e
}

func isBusy(low string) bool {
	return strings.Contains(low, "server busy") || strings.Contains(low, "maximum pending requests")
}

func isContextOverflow(low string) bool {
	mentions := strings.Contains(low, "context length") || strings.Contains(low, "context window") ||
		strings.Contains(low, "context size")
	return mentions && (strings.Contains(low, "exceed") || strings.Contains(low, "too long"))
}

// withCode returns e with another code, keeping its message, upstream
// status and retry-after.
func withCode(e *schema.Error, code string) *schema.Error {
	n := schema.NewError(code, e.Message)
	n.ProviderStatus = e.ProviderStatus
	n.RetryAfterMs = e.RetryAfterMs
	return n
}

// bodyMessage extracts the message of an error body: {"error": "..."} as
// Ollama sends it, or the start of whatever else a proxy sent.
func bodyMessage(b []byte) string {
	var body struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil {
		if msg := errorText(body.Error); msg != "" {
			return msg
		}
	}
	s := strings.TrimSpace(string(b))
	if len(s) > maxMessage {
		s = s[:maxMessage] + "…"
	}
	if s == "" {
		s = "(empty body)"
	}
	return s
}

// readError classifies a failure to read a 200 reply: malformed JSON is
// the provider's fault, anything else is the transport's.
func (p *Provider) readError(ctx context.Context, err error) *schema.Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if ctx.Err() == nil && (errors.As(err, &syntax) || errors.As(err, &typ)) {
		return schema.Errorf(schema.CodeProviderError, "%s: malformed reply: %v", Name, err)
	}
	return p.clean(named(provider.TransportError(ctx, err)))
}

// named prefixes a transport error's message with the provider's name.
func named(e *schema.Error) *schema.Error {
	if strings.HasPrefix(e.Message, Name+":") {
		return e
	}
	n := *e
	n.Message = Name + ": " + e.Message
	return &n
}

// clean names the provider in e's message and makes sure the key is not
// in it, whatever a proxy echoed back.
func (p *Provider) clean(e *schema.Error) *schema.Error {
	e = named(e)
	if k := p.o.APIKey; k != "" && strings.Contains(e.Message, k) {
		n := *e
		n.Message = strings.ReplaceAll(e.Message, k, "[redacted]")
		e = &n
	}
	return e
}
