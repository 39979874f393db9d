package provider

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/llmq/llmq/schema"
)

// NewID returns an OpenAI-style completion id ("chatcmpl-" and 24 random
// hex digits), for replies that carry none of their own.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// Redact replaces each non-empty secret in s with "[redacted]", should a
// provider or a proxy ever echo a key or a token.
func Redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// Named returns a copy of e whose message starts with "name: " and holds
// none of secrets, should a server or proxy have echoed one: every adapter
// answers errors in this shape.
func Named(name string, e *schema.Error, secrets ...string) *schema.Error {
	out := *e
	out.Message = Redact(out.Message, secrets...)
	if !strings.HasPrefix(out.Message, name+":") {
		out.Message = name + ": " + out.Message
	}
	return &out
}

// Snippet returns the start of a body that is not the provider's JSON (an
// HTML page from a proxy, say) as one line of at most max bytes of valid
// UTF-8, "…" marking a cut; "(empty body)" for nothing.
func Snippet(b []byte, max int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// Recode returns e under another code, keeping its message, provider
// status and retry hint: for an adapter that knows better than the HTTP
// status (a 400 that is a context overflow, a 429 that is an empty
// account).
func Recode(e *schema.Error, code string) *schema.Error {
	out := schema.NewError(code, e.Message)
	out.ProviderStatus = e.ProviderStatus
	out.RetryAfterMs = e.RetryAfterMs
	return out
}
