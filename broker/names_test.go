package broker_test

import (
	"strings"
	"testing"

	"github.com/llmq/llmq/broker"
)

func TestValidGroupAllowsPatternsNotSubjectWildcards(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"tier1": true, "gpt-4.1": true, "openai/gpt-4o": true,
		"*": true, "openai/*": true, "anthropic/claude-*": true, "*meta.llama3*": true, "fo::*:static::*": true,
		"": false, "_": false, ">": false, "openai/>": false, "a *": false, ".*": false, "*.": false, "a..*": false,
		strings.Repeat("x", broker.MaxTierLen+1): false,
	} {
		if got := broker.ValidGroup(name); got != want {
			t.Errorf("ValidGroup(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidModel(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"tier1": true, "openai/gpt-4o-mini": true, "gpt-4.1": true, ".hidden..name.": true, "hf.co/a/b:Q4_K_M": true,
		"_": true, "ÜNICODE": true, strings.Repeat("x", broker.MaxModelLen): true,
		"": false, "a b": false, "a\tb": false, "a\nb": false, "a\x00b": false, "a\x7fb": false, "a\u0085b": false,
		"openai/*": false, "*": false, "a>b": false, "\xff": false, strings.Repeat("x", broker.MaxModelLen+1): false,
	} {
		if got := broker.ValidModel(name); got != want {
			t.Errorf("ValidModel(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestModelSubject(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "p"}
	for _, tt := range []struct {
		model, subject, header string
		ok                     bool
	}{
		{"tier1", "p.jobs.tier1", "", true},
		{"openai/gpt-4o-mini", "p.jobs.openai/gpt-4o-mini", "", true},
		{"gpt-4.1", "p.jobs.gpt-4.1", "", true},
		{".dotted", "p.jobs._", ".dotted", true},
		{"a..b", "p.jobs._", "a..b", true},
		{"_", "p.jobs._", "_", true},
		{strings.Repeat("m", broker.MaxTierLen+1), "p.jobs._", strings.Repeat("m", broker.MaxTierLen+1), true},
		{"openai/*", "", "", false},
		{"a b", "", "", false},
	} {
		subject, header, ok := s.ModelSubject(tt.model)
		if subject != tt.subject || header != tt.header || ok != tt.ok {
			t.Errorf("ModelSubject(%q) = %q, %q, %v; want %q, %q, %v", tt.model, subject, header, ok, tt.subject, tt.header, tt.ok)
		}
	}
}
