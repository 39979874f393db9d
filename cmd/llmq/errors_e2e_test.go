package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestE2E_ErrorClasses_ReachProducerAsTheSameTypedErrorForEveryProvider
// makes each provider's fake fail in each documented way and checks that
// the producer, through llmq, gets the same error code whatever the
// provider.
func TestE2E_ErrorClasses_ReachProducerAsTheSameTypedErrorForEveryProvider(t *testing.T) {
	t.Parallel()
	type dep struct {
		tier, model, base, key string
		want                   string
	}
	var deps []dep
	add := func(provider, class, model, base, key, want string) {
		deps = append(deps, dep{provider + "-" + class, model, base, key, want})
	}
	// Ollama
	for class, c := range map[string]struct {
		f    *ollamatest.Failure
		want string
	}{
		"ratelimit": {ollamatest.Busy(), schema.CodeRateLimited},
		"context":   {&ollamatest.Failure{Status: 400, Message: "the input length exceeds the context length"}, schema.CodeContextWindowExceeded},
		"server":    {&ollamatest.Failure{Status: 500, Message: "llama runner process has terminated"}, schema.CodeProviderError},
		"badreq":    {&ollamatest.Failure{Status: 400, Message: "invalid options"}, schema.CodeBadRequest},
	} {
		s := ollamatest.NewServer(t, ollamatest.Config{Fail: c.f})
		add("ollama", class, "ollama/qwen2.5-coder:14b", s.URL(), "", c.want)
	}
	add("ollama", "auth", "ollama/qwen2.5-coder:14b", ollamatest.NewServer(t, ollamatest.Config{Key: "right"}).URL(), "wrong", schema.CodeAuthentication)
	// Gemini
	for class, c := range map[string]struct {
		f    *geminitest.Failure
		want string
	}{
		"ratelimit": {geminitest.RateLimited("1s"), schema.CodeRateLimited},
		"context":   {geminitest.TooManyTokens(10, 5), schema.CodeContextWindowExceeded},
		"server":    {geminitest.Internal(), schema.CodeProviderError},
		"badreq":    {geminitest.InvalidArgument("bad field"), schema.CodeBadRequest},
	} {
		s := geminitest.NewServer(t, geminitest.Config{Key: "k", Fail: c.f})
		add("gemini", class, "gemini/gemini-1.5-flash", s.URL(), "k", c.want)
	}
	add("gemini", "auth", "gemini/gemini-1.5-flash", geminitest.NewServer(t, geminitest.Config{Key: "right"}).URL(), "wrong", schema.CodeAuthentication)
	// Anthropic
	for class, c := range map[string]struct {
		f    *anthropictest.Failure
		want string
	}{
		"ratelimit":  {anthropictest.RateLimited("1"), schema.CodeRateLimited},
		"overloaded": {anthropictest.Overloaded(), schema.CodeRateLimited},
		"context":    {anthropictest.PromptTooLong(10, 5), schema.CodeContextWindowExceeded},
		"server":     {anthropictest.Documented(500), schema.CodeProviderError},
		"badreq":     {anthropictest.Documented(400), schema.CodeBadRequest},
	} {
		s := anthropictest.NewServer(t, anthropictest.Config{Key: "k", Fail: c.f})
		add("anthropic", class, "claude-3-5-sonnet-20240620", s.URL(), "k", c.want)
	}
	add("anthropic", "auth", "claude-3-5-sonnet-20240620", anthropictest.NewServer(t, anthropictest.Config{Key: "right"}).URL(), "wrong", schema.CodeAuthentication)
	// OpenAI-compatible
	for class, c := range map[string]struct {
		f    openaitest.Failure
		want string
	}{
		"ratelimit": {openaitest.RateLimited(time.Second), schema.CodeRateLimited},
		"context":   {openaitest.ContextLengthExceeded(5, 10, 0), schema.CodeContextWindowExceeded},
		"server":    {openaitest.ServerError(500), schema.CodeProviderError},
		"badreq":    {openaitest.BadRequest("bad", "messages"), schema.CodeBadRequest},
	} {
		s := openaitest.NewServer(t, openaitest.Config{Key: "k", Fail: &c.f})
		add("openai", class, "openai/gpt-4o-mini", s.URL(), "k", c.want)
	}
	add("openai", "auth", "openai/gpt-4o-mini", openaitest.NewServer(t, openaitest.Config{Key: "right"}).URL(), "wrong", schema.CodeAuthentication)
	// Connection refused, for every provider.
	for _, p := range []struct{ name, model, suffix string }{
		{"ollama", "ollama/qwen2.5-coder:14b", ""}, {"gemini", "gemini/gemini-1.5-flash", ""},
		{"anthropic", "claude-3-5-sonnet-20240620", ""}, {"openai", "openai/gpt-4o-mini", "/v1"},
	} {
		add(p.name, "refused", p.model, closedPort(t)+p.suffix, "k", schema.CodeConnection)
	}

	var cfg strings.Builder
	cfg.WriteString("model_list:\n")
	for _, d := range deps {
		fmt.Fprintf(&cfg, "  - model_name: %s\n    litellm_params: {model: %q, api_base: %q, api_key: %q}\n", d.tier, d.model, d.base, d.key)
	}
	cfg.WriteString("router_settings: {num_retries: 0, disable_cooldowns: true}\n")
	u := startUp(t, "-c", writeConfig(t, cfg.String()), "--skip-model-check")
	for _, d := range deps {
		_, _, err := u.run(t, "complete", "--tier", d.tier, "a prompt")
		if got := schema.CodeOf(err); got != d.want {
			t.Errorf("%s: got %v, want code %s", d.tier, err, d.want)
		}
	}
}
