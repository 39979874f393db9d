package provider_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/sse"
)

func TestLimitReader_ExactlyTheLimitReads_OneMoreIsPayloadTooLarge(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 100, 4096} {
		// Exactly n bytes: read whole, ending in io.EOF.
		b, err := io.ReadAll(provider.LimitReader(strings.NewReader(strings.Repeat("a", n)), int64(n), "reply"))
		if err != nil || len(b) != n {
			t.Fatalf("limit %d, body %d: read %d bytes, err %v", n, n, len(b), err)
		}
		// One byte more, read in any pieces: the limit's bytes, then the
		// typed error, and again on every later read.
		r := provider.LimitReader(iotest.HalfReader(strings.NewReader(strings.Repeat("a", n+1))), int64(n), "reply")
		b, err = io.ReadAll(r)
		if len(b) != n || schema.CodeOf(err) != schema.CodePayloadTooLarge {
			t.Fatalf("limit %d, body %d: read %d bytes, err %v; want %d bytes and payload_too_large", n, n+1, len(b), err, n)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("reply over %d bytes", n)) {
			t.Errorf("error %q does not name the cap", err)
		}
		if _, err := r.Read(make([]byte, 8)); schema.CodeOf(err) != schema.CodePayloadTooLarge {
			t.Errorf("read after the error: %v", err)
		}
	}
}

func TestLimitReader_ErrorKeepsItsCodeThroughTransportError(t *testing.T) {
	t.Parallel()
	_, err := io.ReadAll(provider.LimitReader(strings.NewReader("abcdef"), 3, "stream"))
	e := provider.TransportError(context.Background(), err)
	if e.Code != schema.CodePayloadTooLarge || e.Retryable() {
		t.Fatalf("TransportError = %+v, want payload_too_large, not retryable", e)
	}
}

func TestTransportError_OverlongEventOrLine_PayloadTooLarge(t *testing.T) {
	t.Parallel()
	_, err := sse.NewReader(strings.NewReader("data: " + strings.Repeat("x", sse.MaxEvent+1) + "\n\n")).Next()
	if !errors.Is(err, sse.ErrTooLarge) {
		t.Fatalf("sse error %v", err)
	}
	if e := provider.TransportError(context.Background(), err); e.Code != schema.CodePayloadTooLarge {
		t.Errorf("sse event over MaxEvent: %+v, want payload_too_large", e)
	}
	if e := provider.TransportError(context.Background(), fmt.Errorf("scan: %w", bufio.ErrTooLong)); e.Code != schema.CodePayloadTooLarge {
		t.Errorf("line too long: %+v, want payload_too_large", e)
	}
}

func TestOptionsWithDefaults_CapsAreTheExportedConstants(t *testing.T) {
	t.Parallel()
	o := provider.Options{HTTP: http.DefaultClient}.WithDefaults()
	if o.MaxReplyBytes != provider.MaxReplyBytes || o.MaxStreamBytes != provider.MaxStreamBytes {
		t.Fatalf("caps %d/%d, want %d/%d", o.MaxReplyBytes, o.MaxStreamBytes, provider.MaxReplyBytes, provider.MaxStreamBytes)
	}
}
