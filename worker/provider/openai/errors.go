package openai

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// maxMessage bounds the provider text kept in an error message.
const maxMessage = 1000

// Error codes and types OpenAI-compatible servers send that refine the
// HTTP status.
const (
	codeContextLength     = "context_length_exceeded"
	typeExceedContext     = "exceed_context_size_error" // llama.cpp server
	codeContentFilter     = "content_filter"            // Azure OpenAI
	codeContentPolicy     = "content_policy_violation"
	codeInsufficientQuota = "insufficient_quota"
	codeRateLimit         = "rate_limit_exceeded"
	typeRateLimit         = "rate_limit_error"
	codeModelNotFound     = "model_not_found"
	codeInvalidAPIKey     = "invalid_api_key"
	typeInvalidRequest    = "invalid_request_error"
)

// wireError is an error object as the various servers send it: OpenAI's
// {message, type, param, code} where code is a string, or a number (vLLM,
// OpenRouter, llama.cpp), or the bare string LM Studio sometimes sends.
type wireError struct {
	Message string
	Type    string
	Code    string
	Param   string // the request member at fault, when the server names it
	Status  int    // numeric code, when the server sent one
}

// parseError reads an error body. It accepts {"error":{...}},
// {"error":"text"} and vLLM's older top-level {"object":"error",
// "message":...}. ok is false when body holds none of them.
func parseError(body []byte) (e wireError, ok bool) {
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
	}
	if json.Unmarshal(body, &env) != nil {
		return e, false
	}
	if hasError(env.Error) {
		var s string
		if json.Unmarshal(env.Error, &s) == nil {
			return wireError{Message: s}, true
		}
		var obj struct {
			Message string          `json:"message"`
			Type    *string         `json:"type"`
			Param   *string         `json:"param"`
			Code    json.RawMessage `json:"code"`
		}
		if json.Unmarshal(env.Error, &obj) != nil {
			return e, false
		}
		e = wireError{Message: obj.Message}
		if obj.Param != nil {
			e.Param = truncate(*obj.Param, 200)
		}
		if obj.Type != nil {
			e.Type = *obj.Type
		}
		e.Code, e.Status = parseCode(obj.Code)
		return e, true
	}
	if env.Message != "" {
		e = wireError{Message: env.Message, Type: env.Type}
		e.Code, e.Status = parseCode(env.Code)
		return e, true
	}
	return e, false
}

// parseCode splits an error's code member into a string code or an HTTP
// status.
func parseCode(raw json.RawMessage) (string, int) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", 0
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if n, err := strconv.Atoi(s); err == nil && n >= 100 && n <= 599 {
			return "", n
		}
		return s, 0
	}
	var n int
	if json.Unmarshal(raw, &n) == nil && n >= 100 && n <= 599 {
		return "", n
	}
	return "", 0
}

// statusError reads and closes a non-200 answer and types it.
func (p *Provider) statusError(resp *http.Response) *schema.Error {
	return p.apiError(resp.StatusCode, resp.Header, provider.ReadErrorBody(resp))
}

// apiError types an error body. status is the HTTP status, or 0 for an
// error that arrived inside a 200 answer or an open stream.
func (p *Provider) apiError(status int, h http.Header, body []byte) *schema.Error {
	we, ok := parseError(body)
	if !ok {
		we = wireError{Message: string(bytes.TrimSpace(body))}
	}
	we.Message = p.redact(we.Message) // before truncation can cut the key
	if status == 0 || status == http.StatusOK {
		status = we.Status
	}
	return p.named(classify(p.name, status, h, we))
}

// classify turns an error into a *schema.Error: the HTTP status gives the
// class (provider.StatusError), the server's code, type and message refine
// it. status 0 means the server gave none (an in-stream error object
// without a numeric code).
func classify(name string, status int, h http.Header, we wireError) *schema.Error {
	detail := truncate(strings.TrimSpace(we.Message), maxMessage)
	if detail == "" {
		detail = http.StatusText(status)
	}
	if we.Param != "" && !strings.Contains(detail, we.Param) {
		detail += " (param " + we.Param + ")"
	}
	if we.Code != "" {
		detail += " (" + we.Code + ")"
	} else if we.Type != "" && we.Type != typeInvalidRequest {
		detail += " (" + we.Type + ")"
	}
	var e *schema.Error
	if status > 0 {
		e = provider.StatusError(name, status, h, detail)
	} else {
		e = schema.NewError(schema.CodeProviderError, name+": error in stream: "+detail)
		if we.Type == typeInvalidRequest {
			e = schema.NewError(schema.CodeBadRequest, e.Message)
		}
	}
	code := refine(status, we)
	if code == "" || code == e.Code {
		if code == schema.CodeRateLimited || e.Code == schema.CodeRateLimited {
			addRetryHint(e, we.Message)
		}
		return e
	}
	out := schema.NewError(code, e.Message)
	out.ProviderStatus = e.ProviderStatus
	switch code {
	case schema.CodeRateLimited:
		out.RetryAfterMs = e.RetryAfterMs
		addRetryHint(out, we.Message)
	case schema.CodeAuthentication:
		if isQuota(we) {
			out.Message = name + ": quota exhausted, check the account's plan and billing (no retry helps): " + strings.TrimPrefix(e.Message, name+": ")
		}
	}
	return out
}

// refine returns the code the server's own code, type or message call
// for, or "" when the status says it all.
func refine(status int, we wireError) string {
	msg := strings.ToLower(we.Message)
	clientSide := status == 0 || status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge ||
		status == http.StatusUnprocessableEntity
	switch {
	case isQuota(we):
		// A 429 no retry fixes: the account is out of credit. It is not
		// rate_limited (which is retried and cooled down) but an account
		// problem, like a refused key.
		return schema.CodeAuthentication
	case we.Code == codeContextLength || we.Type == typeExceedContext:
		return schema.CodeContextWindowExceeded
	case clientSide && isContextMessage(msg):
		return schema.CodeContextWindowExceeded
	case we.Code == codeContentFilter || we.Code == codeContentPolicy:
		return schema.CodeContentPolicy
	case clientSide && (strings.Contains(msg, "content management policy") || strings.Contains(msg, "content policy") ||
		strings.Contains(msg, "safety system")):
		return schema.CodeContentPolicy
	case we.Code == codeRateLimit || we.Type == typeRateLimit:
		return schema.CodeRateLimited
	case we.Code == codeModelNotFound:
		return schema.CodeNotFound
	case we.Code == codeInvalidAPIKey:
		return schema.CodeAuthentication
	}
	return ""
}

func isQuota(we wireError) bool {
	return we.Code == codeInsufficientQuota || we.Type == codeInsufficientQuota
}

// isContextMessage recognises context-overflow messages of servers that
// send no code: OpenAI's and vLLM's "maximum context length", llama.cpp's
// "exceeds the available context size", and similar.
func isContextMessage(msg string) bool {
	for _, s := range []string{"maximum context length", "context length exceeded", "context_length_exceeded",
		"exceeds the available context size", "context window"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// retryHint matches OpenAI's "Please try again in 1.5s" / "in 20ms" /
// "in 1m30s" hint in rate-limit messages.
var retryHint = regexp.MustCompile(`(?i)try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)`)

// retryAfterSeconds matches Azure OpenAI's "Please retry after 6 seconds."
var retryAfterSeconds = regexp.MustCompile(`(?i)retry after (\d+) seconds?`)

// addRetryHint sets e's retry-after from the message when no header gave
// one.
func addRetryHint(e *schema.Error, message string) {
	if e.RetryAfterMs > 0 {
		return
	}
	if m := retryHint.FindStringSubmatch(message); m != nil {
		if d, err := time.ParseDuration(m[1]); err == nil {
			e.WithRetryAfter(d)
		}
		return
	}
	if m := retryAfterSeconds.FindStringSubmatch(message); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 && n < 24*3600 {
			e.WithRetryAfter(time.Duration(n) * time.Second)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
