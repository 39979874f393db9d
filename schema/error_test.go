package schema_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
)

func TestNewErrorMapsEveryCodeToTypeAndStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code, typ string
		status    int
	}{
		{schema.CodeBadRequest, "invalid_request_error", 400},
		{schema.CodeUnknownTier, "invalid_request_error", 404},
		{schema.CodePayloadTooLarge, "invalid_request_error", 413},
		{schema.CodeAuthentication, "authentication_error", 401},
		{schema.CodeNotFound, "invalid_request_error", 404},
		{schema.CodeContextWindowExceeded, "invalid_request_error", 400},
		{schema.CodeContentPolicy, "invalid_request_error", 400},
		{schema.CodeRateLimited, "rate_limit_error", 429},
		{schema.CodeOverloaded, "rate_limit_error", 429},
		{schema.CodeNoDeployments, "api_error", 503},
		{schema.CodeProviderError, "api_error", 502},
		{schema.CodeConnection, "api_error", 502},
		{schema.CodeTimeout, "timeout_error", 504},
		{schema.CodeCancelled, "api_error", 499},
		{schema.CodeInternal, "api_error", 500},
		{schema.CodeCoolingDown, "rate_limit_error", 429},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			e := schema.NewError(tt.code, "msg")
			if e.Code != tt.code || e.Type != tt.typ || e.Status != tt.status || e.Message != "msg" {
				t.Fatalf("NewError(%q) = %+v, want type %s status %d", tt.code, e, tt.typ, tt.status)
			}
			if e.RetryAfterMs != 0 || e.ProviderStatus != 0 {
				t.Fatalf("NewError(%q) sets hints: %+v", tt.code, e)
			}
		})
	}
}

func TestNewErrorOfUnknownCodeIsTypedAsInternal(t *testing.T) {
	t.Parallel()
	e := schema.NewError("no_such_code", "x")
	if e.Type != schema.TypeAPI || e.Status != 500 {
		t.Fatalf("NewError(unknown) = %+v, want api_error/500", e)
	}
}

func TestErrorfFormatsAndErrorStringNamesCodeAndStatus(t *testing.T) {
	t.Parallel()
	e := schema.Errorf(schema.CodeUnknownTier, "tier %q unknown", "t9")
	if e.Message != `tier "t9" unknown` {
		t.Fatalf("message = %q", e.Message)
	}
	if got, want := e.Error(), `llmq unknown_tier (404): tier "t9" unknown`; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestWithRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		d      time.Duration
		wantMs int64
	}{
		{"whole milliseconds", 1500 * time.Millisecond, 1500},
		{"seconds", 3 * time.Second, 3000},
		{"sub-millisecond rounds up to 1 ms", 300 * time.Microsecond, 1},
		{"fraction is truncated", 2*time.Millisecond + 900*time.Microsecond, 2},
		{"zero leaves no hint", 0, 0},
		{"negative leaves no hint", -time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := schema.NewError(schema.CodeRateLimited, "x")
			if got := e.WithRetryAfter(tt.d); got != e {
				t.Fatal("WithRetryAfter did not return its receiver")
			}
			if e.RetryAfterMs != tt.wantMs {
				t.Fatalf("RetryAfterMs = %d, want %d", e.RetryAfterMs, tt.wantMs)
			}
			if got := e.RetryAfter(); got != time.Duration(tt.wantMs)*time.Millisecond {
				t.Fatalf("RetryAfter() = %v", got)
			}
		})
	}
	t.Run("zero keeps an earlier hint", func(t *testing.T) {
		t.Parallel()
		e := schema.NewError(schema.CodeRateLimited, "x").WithRetryAfter(time.Second).WithRetryAfter(0)
		if e.RetryAfterMs != 1000 {
			t.Fatalf("RetryAfterMs = %d, want 1000", e.RetryAfterMs)
		}
	})
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want bool
	}{
		{schema.CodeRateLimited, true},
		{schema.CodeOverloaded, true},
		{schema.CodeNoDeployments, true},
		{schema.CodeProviderError, true},
		{schema.CodeConnection, true},
		{schema.CodeTimeout, true},
		{schema.CodeBadRequest, false},
		{schema.CodeUnknownTier, false},
		{schema.CodePayloadTooLarge, false},
		{schema.CodeAuthentication, false},
		{schema.CodeNotFound, false},
		{schema.CodeContextWindowExceeded, false},
		{schema.CodeContentPolicy, false},
		{schema.CodeCancelled, false},
		{schema.CodeInternal, false},
		{"no_such_code", false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			if got := schema.NewError(tt.code, "").Retryable(); got != tt.want {
				t.Fatalf("Retryable(%s) = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
}

func TestErrorsIsMatchesOnCode(t *testing.T) {
	t.Parallel()
	timeout := schema.NewError(schema.CodeTimeout, "deadline passed")
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same code, other message", timeout, schema.NewError(schema.CodeTimeout, ""), true},
		{"wrapped", fmt.Errorf("call: %w", timeout), schema.NewError(schema.CodeTimeout, ""), true},
		{"joined", errors.Join(io.EOF, timeout), schema.NewError(schema.CodeTimeout, ""), true},
		{"other code", timeout, schema.NewError(schema.CodeCancelled, ""), false},
		{"non-schema target", timeout, io.EOF, false},
		{"plain error", io.EOF, schema.NewError(schema.CodeTimeout, ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := errors.Is(tt.err, tt.target); got != tt.want {
				t.Fatalf("errors.Is = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAsErrorAndCodeOf(t *testing.T) {
	t.Parallel()
	inner := schema.NewError(schema.CodeNotFound, "no model")
	tests := []struct {
		name     string
		err      error
		wantCode string // of AsError
		codeOf   string
		same     bool // AsError returns inner itself
	}{
		{"nil", nil, "", "", false},
		{"itself", inner, schema.CodeNotFound, schema.CodeNotFound, true},
		{"wrapped once", fmt.Errorf("a: %w", inner), schema.CodeNotFound, schema.CodeNotFound, true},
		{"wrapped twice", fmt.Errorf("b: %w", fmt.Errorf("a: %w", inner)), schema.CodeNotFound, schema.CodeNotFound, true},
		{"plain error becomes internal", errors.New("boom"), schema.CodeInternal, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := schema.AsError(tt.err)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("AsError(nil) = %v", got)
				}
			} else {
				if got == nil || got.Code != tt.wantCode {
					t.Fatalf("AsError = %+v, want code %s", got, tt.wantCode)
				}
				if tt.same && got != inner {
					t.Fatal("AsError did not return the wrapped *Error itself")
				}
				if !tt.same && got.Message != tt.err.Error() {
					t.Fatalf("AsError message = %q, want %q", got.Message, tt.err.Error())
				}
			}
			if c := schema.CodeOf(tt.err); c != tt.codeOf {
				t.Fatalf("CodeOf = %q, want %q", c, tt.codeOf)
			}
		})
	}
}

func TestDecodeError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		codec    schema.Codec
		data     []byte
		wantCode string
		wantMsg  string
	}{
		{"JSON garbage", schema.JSON, []byte("not json"), schema.CodeInternal, "malformed error reply (8 bytes)"},
		{"msgpack garbage", schema.MsgPack, []byte{0xc1, 0xc1, 0xc1}, schema.CodeInternal, "malformed error reply (3 bytes)"},
		{"empty", schema.MsgPack, nil, schema.CodeInternal, "malformed error reply (0 bytes)"},
		{"JSON null error", schema.JSON, []byte(`{"error":null}`), schema.CodeInternal, "malformed error reply"},
		{"JSON without error field", schema.JSON, []byte(`{"id":"x"}`), schema.CodeInternal, "malformed error reply"},
		{"JSON error body", schema.JSON, []byte(`{"error":{"type":"rate_limit_error","code":"rate_limited","message":"slow","status":429,"retry_after_ms":250}}`),
			schema.CodeRateLimited, "slow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := schema.DecodeError(tt.codec, tt.data)
			if e == nil || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("DecodeError = %+v, want %s %q", e, tt.wantCode, tt.wantMsg)
			}
		})
	}
	t.Run("msgpack error body round trip", func(t *testing.T) {
		t.Parallel()
		body := sampleErrorBody()
		data, err := schema.MsgPack.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		e := schema.DecodeError(schema.MsgPack, data)
		if *e != *body.Error {
			t.Fatalf("DecodeError = %+v, want %+v", e, body.Error)
		}
		if e.RetryAfter() != 1500*time.Millisecond {
			t.Fatalf("RetryAfter = %v", e.RetryAfter())
		}
	})
}
