package gemini

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// name is how errors name the provider.
const name = "gemini"

// httpError classifies a non-200 answer from its status, headers and body.
func (p *Provider) httpError(resp *http.Response) *schema.Error {
	body := provider.ReadErrorBody(resp)
	ae := decodeAPIError(body)
	if ae == nil {
		return p.classify(resp.StatusCode, resp.Header, &apiError{Message: snippet(body)})
	}
	return p.classify(resp.StatusCode, resp.Header, ae)
}

// classify turns a Gemini error (from an HTTP answer or from inside a
// stream) into a typed error: the generic HTTP classes first, then what the
// Gemini status and message say precisely.
func (p *Provider) classify(status int, h http.Header, ae *apiError) *schema.Error {
	if status == 0 {
		status = ae.Code
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	msg := p.redact(ae.Message)
	if ae.Status != "" {
		msg = ae.Status + ": " + msg
	}
	e := provider.StatusError(name, status, h, msg)
	reasons, retryDelay := details(ae.Details)
	lower := strings.ToLower(ae.Message)
	switch {
	case hasPrefix(reasons, "API_KEY_") || strings.Contains(lower, "api key not valid") ||
		strings.Contains(lower, "api key not found") || strings.Contains(lower, "api key expired") ||
		ae.Status == "UNAUTHENTICATED" || ae.Status == "PERMISSION_DENIED":
		e.Code = schema.CodeAuthentication
	case status == http.StatusBadRequest && (strings.Contains(lower, "input token count") ||
		strings.Contains(lower, "exceeds the maximum number of tokens")):
		e.Code = schema.CodeContextWindowExceeded
	case ae.Status == "RESOURCE_EXHAUSTED":
		e.Code = schema.CodeRateLimited
	case ae.Status == "DEADLINE_EXCEEDED" || status == http.StatusGatewayTimeout:
		e.Code = schema.CodeTimeout
	case ae.Status == "NOT_FOUND":
		e.Code = schema.CodeNotFound
	}
	refined := schema.NewError(e.Code, e.Message)
	refined.ProviderStatus = e.ProviderStatus
	refined.RetryAfterMs = e.RetryAfterMs
	if refined.RetryAfterMs == 0 && retryDelay > 0 {
		refined.WithRetryAfter(retryDelay)
	}
	return refined
}

// decodeAPIError reads {"error":{...}}, or the one-element array form the
// non-SSE stream endpoint answers with. It returns nil for anything else.
func decodeAPIError(body []byte) *apiError {
	body = bytes.TrimSpace(body)
	var env struct {
		Error *apiError `json:"error"`
	}
	if len(body) > 0 && body[0] == '[' {
		var arr []json.RawMessage
		if json.Unmarshal(body, &arr) != nil || len(arr) == 0 {
			return nil
		}
		body = arr[0]
	}
	if json.Unmarshal(body, &env) != nil || env.Error == nil {
		return nil
	}
	return env.Error
}

// details returns the ErrorInfo reasons and the RetryInfo delay (0 when
// absent) of an error's details.
func details(raw []json.RawMessage) (reasons []string, retryDelay time.Duration) {
	for _, r := range raw {
		var d errorDetail
		if json.Unmarshal(r, &d) != nil {
			continue
		}
		if d.Reason != "" {
			reasons = append(reasons, d.Reason)
		}
		if d.RetryDelay != "" {
			// A google.protobuf.Duration in JSON: decimal seconds with an
			// "s" suffix, which time.ParseDuration reads.
			if v, err := time.ParseDuration(d.RetryDelay); err == nil && v > 0 {
				retryDelay = v
			}
		}
	}
	return reasons, retryDelay
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// snippet returns a short, single-line excerpt of a non-JSON error body.
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	const max = 200
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if s == "" {
		s = "no error body"
	}
	return s
}

// redact removes the API key from text that came from upstream, in case a
// proxy echoes it.
func (p *Provider) redact(s string) string { return provider.Redact(s, p.key) }

// malformed is the error of a reply that is not the documented JSON.
func malformed(what string, err error) *schema.Error {
	return schema.Errorf(schema.CodeProviderError, "%s: malformed %s: %v", name, what, err)
}

// noCandidates is the error of a 200 reply without a candidate: a prompt
// blocked outright (content policy) or an empty answer.
func noCandidates(pf *promptFeedback) *schema.Error {
	if pf != nil && pf.BlockReason != "" {
		return schema.Errorf(schema.CodeContentPolicy, "%s: prompt blocked: %s", name, pf.BlockReason)
	}
	return schema.Errorf(schema.CodeProviderError, "%s: reply has no candidates", name)
}
