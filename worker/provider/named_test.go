package provider_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

func TestNamed_PrefixesOnceAndRedacts(t *testing.T) {
	t.Parallel()
	in := schema.NewError(schema.CodeProviderError, "upstream echoed sk-secret")
	got := provider.Named("acme", in, "sk-secret")
	if got.Message != "acme: upstream echoed [redacted]" || in.Message != "upstream echoed sk-secret" {
		t.Fatalf("Named = %q (input now %q)", got.Message, in.Message)
	}
	if again := provider.Named("acme", got); again.Message != got.Message {
		t.Fatalf("named twice: %q", again.Message)
	}
}

func TestReadError_MalformedIsProviderErrorElseTransport(t *testing.T) {
	t.Parallel()
	var v struct{}
	syn := json.Unmarshal([]byte("{oops"), &v)
	e := provider.ReadError(context.Background(), "acme", "reply", syn, "k")
	if e.Code != schema.CodeProviderError || !strings.HasPrefix(e.Message, "acme: malformed reply:") {
		t.Fatalf("malformed JSON: %+v", e)
	}
	e = provider.ReadError(context.Background(), "acme", "reply", io.ErrUnexpectedEOF, "k")
	if e.Code == schema.CodeProviderError || !strings.HasPrefix(e.Message, "acme: ") {
		t.Fatalf("cut body: %+v", e)
	}
}
