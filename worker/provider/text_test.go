package provider_test

import (
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

func TestNewIDIsOpenAIStyleAndUnique(t *testing.T) {
	t.Parallel()
	a, b := provider.NewID(), provider.NewID()
	if !strings.HasPrefix(a, "chatcmpl-") || len(a) != len("chatcmpl-")+24 || a == b {
		t.Fatalf("ids %q %q", a, b)
	}
}

func TestRedactMasksEverySecret(t *testing.T) {
	t.Parallel()
	got := provider.Redact("key sk-1 and token tok-2, key sk-1 again", "sk-1", "", "tok-2")
	if got != "key [redacted] and token [redacted], key [redacted] again" {
		t.Fatalf("got %q", got)
	}
}

func TestSnippetIsOneShortLineOfValidUTF8(t *testing.T) {
	t.Parallel()
	if got := provider.Snippet([]byte("<html>\n  <b>502</b>\n</html>"), 100); got != "<html> <b>502</b> </html>" {
		t.Errorf("got %q", got)
	}
	if got := provider.Snippet([]byte("ééé"), 3); got != "é…" {
		t.Errorf("cut in a rune: got %q", got)
	}
	if got := provider.Snippet(nil, 10); got != "(empty body)" {
		t.Errorf("empty: got %q", got)
	}
}

func TestRecodeKeepsStatusAndHint(t *testing.T) {
	t.Parallel()
	e := schema.NewError(schema.CodeBadRequest, "acme: HTTP 400: too long")
	e.ProviderStatus = 400
	e.WithRetryAfter(2 * time.Second)
	out := provider.Recode(e, schema.CodeContextWindowExceeded)
	if out.Code != schema.CodeContextWindowExceeded || out.Message != e.Message || out.ProviderStatus != 400 ||
		out.RetryAfter() != 2*time.Second || out.Status == e.Status && out.Type == e.Type && out.Code == e.Code {
		t.Fatalf("recoded %+v from %+v", out, e)
	}
}
