package provider

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/sse"
)

// StatusError classifies an HTTP error answer the same way for every
// provider. name is the provider ("ollama", "gemini", ...), message its own
// error text. Callers that recognise a more precise class (context window,
// content policy, an Ollama busy 503) override the code after.
//
//	400 → bad_request          401, 403 → authentication
//	404 → not_found            408 → timeout
//	413 → payload_too_large    429, 529 → rate_limited (Retry-After kept)
//	5xx → provider_error       anything else → provider_error
func StatusError(name string, status int, h http.Header, message string) *schema.Error {
	msg := fmt.Sprintf("%s: HTTP %d: %s", name, status, strings.TrimSpace(message))
	var e *schema.Error
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		e = schema.NewError(schema.CodeBadRequest, msg)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e = schema.NewError(schema.CodeAuthentication, msg)
	case status == http.StatusNotFound:
		e = schema.NewError(schema.CodeNotFound, msg)
	case status == http.StatusRequestTimeout:
		e = schema.NewError(schema.CodeTimeout, msg)
	case status == http.StatusRequestEntityTooLarge:
		e = schema.NewError(schema.CodePayloadTooLarge, msg)
	case status == http.StatusTooManyRequests || status == 529:
		e = schema.NewError(schema.CodeRateLimited, msg)
	default:
		e = schema.NewError(schema.CodeProviderError, msg)
	}
	e.ProviderStatus = status
	if d := RetryAfter(h); d > 0 {
		e.WithRetryAfter(d)
	}
	return e
}

// RetryAfter parses the Retry-After header (seconds or an HTTP date) and
// the retry-after-ms header some providers send. It returns 0 when there
// is none.
func RetryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil {
			if d := duration(ms, time.Millisecond); d > 0 {
				return d
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return duration(s, time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// duration converts n units to a Duration, or 0 when n is not positive, is
// NaN or does not fit (converting such a float would give a negative
// Duration).
func duration(n float64, unit time.Duration) time.Duration {
	d := n * float64(unit)
	if !(d > 0 && d < math.MaxInt64) {
		return 0
	}
	return time.Duration(d)
}

// TransportError classifies a failure to get an answer at all: the call's
// deadline passed (timeout), the producer went away (cancelled), the
// connection was refused, reset or dropped (connection_error), the answer
// or one of its events was over the size read (payload_too_large, see
// LimitReader).
//
// A read that failed once the call's deadline had passed is a time-out
// whatever the read's error was: a reply still trickling in when the
// deadline passed ends in whatever error the read got.
func TransportError(ctx context.Context, err error) *schema.Error {
	var se *schema.Error
	if errors.As(err, &se) {
		return se
	}
	switch {
	case errors.Is(err, sse.ErrTooLarge):
		return schema.Errorf(schema.CodePayloadTooLarge, "stream event over %d bytes: llmq reads no more of a provider's answer", sse.MaxEvent)
	case errors.Is(err, bufio.ErrTooLong):
		return schema.NewError(schema.CodePayloadTooLarge, "stream line too long: llmq reads no more of a provider's answer")
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return schema.NewError(schema.CodeTimeout, "provider call timed out")
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return schema.NewError(schema.CodeCancelled, "provider call cancelled")
	case errors.Is(err, syscall.ECONNREFUSED):
		return schema.Errorf(schema.CodeConnection, "connection refused: %v", redactURL(err))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return schema.Errorf(schema.CodeConnection, "connection dropped: %v", redactURL(err))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return schema.NewError(schema.CodeTimeout, "provider call timed out")
	}
	return schema.Errorf(schema.CodeConnection, "provider unreachable: %v", redactURL(err))
}

// redactURL drops the query string of a *url.Error's URL, where a provider
// that takes its key as ?key= would have it.
func redactURL(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '?'); i >= 0 {
		if j := strings.IndexByte(s[i:], '"'); j >= 0 {
			return s[:i] + s[i+j:]
		}
		return s[:i]
	}
	return s
}

// ReadError classifies a failure to read a reply body: malformed JSON is
// the provider's fault (provider_error), anything else — a dropped
// connection, the deadline — the transport's (TransportError). The
// message names the provider and holds none of secrets.
func ReadError(ctx context.Context, name, what string, err error, secrets ...string) *schema.Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) {
		return Named(name, schema.Errorf(schema.CodeProviderError, "malformed %s: %v", what, err), secrets...)
	}
	return Named(name, TransportError(ctx, err), secrets...)
}
