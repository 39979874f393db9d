package broker_test

import (
	"math/rand/v2"
	"slices"
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

// TestSortPatternsAsLiteLLM: the expected order is what LiteLLM's
// PatternUtils.sorted_patterns gives (computed with Python's re.escape),
// ties by name.
func TestSortPatternsAsLiteLLM(t *testing.T) {
	t.Parallel()
	want := []string{"anthropic/claude-3-*", "anthropic/claude-*", "fo::*:static::*", "*meta.llama3*", "anthropic/*",
		"a(b)/*", "x+y?/*", "gpt-4o*", "openai/*", "*-mini", "groq/*", "*"}
	in := slices.Clone(want)
	rand.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
	ps := make([]broker.Pattern, len(in))
	for i, n := range in {
		ps[i] = broker.CompilePattern(n)
	}
	broker.SortPatterns(ps)
	var got []string
	for _, p := range ps {
		got = append(got, p.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("order:\n got %q\nwant %q", got, want)
	}
}

func TestPatternMatchesWholeName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		pattern, model string
		want           []string
		ok             bool
	}{
		{"openai/*", "openai/gpt-4o-mini", []string{"gpt-4o-mini"}, true},
		{"openai/*", "openai/", []string{""}, true},
		{"openai/*", "azure/openai/gpt-4o", nil, false},
		{"*", "anything/at.all", []string{"anything/at.all"}, true},
		{"a/*-mini", "a/x-mini", []string{"x"}, true},
		{"a/*-mini", "a/x-mini-2", nil, false},
		{"fo::*:static::*", "fo::hi:static::there", []string{"hi", "there"}, true},
		{"gpt-4.*", "gpt-4x1", nil, false}, // '.' is itself
		{"a(b)/*", "a(b)/c", []string{"c"}, true},
	} {
		got, ok := broker.CompilePattern(tt.pattern).Match(tt.model)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("%q.Match(%q) = %q, %v; want %q, %v", tt.pattern, tt.model, got, ok, tt.want, tt.ok)
		}
	}
}
