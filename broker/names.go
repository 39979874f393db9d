package broker

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Names a producer asks for. A model group (a config's model_name, the
// tier a worker serves) is a tier name or a wildcard pattern ("openai/*",
// "*"); a producer asks for a model by name (a tier, an alias of one, or a
// name a pattern matches: "openai/gpt-4o-mini"). A name that is a valid
// tier travels as the subject <prefix>.jobs.<name>; any other model name
// is sent on <prefix>.jobs._ with the header Llmq-Model (see
// docs/protocol.md §2.1).

// AnyModel is the reserved tier token of the subject that carries the
// model's name in the Llmq-Model header instead: <prefix>.jobs._. No
// model group may be called so.
const AnyModel = "_"

// MaxModelLen is the longest model name a job may ask for, in bytes.
const MaxModelLen = 256

// ModelJobs is the subject of jobs that name their model in the Llmq-Model
// header: <prefix>.jobs._.
func (s Subjects) ModelJobs() string { return s.Jobs(AnyModel) }

// IsPattern reports whether a model group's name is a wildcard pattern:
// it holds a '*', which matches any run of characters ("openai/*",
// "anthropic/claude-*", "*").
func IsPattern(name string) bool { return strings.IndexByte(name, '*') >= 0 }

// ValidGroup reports whether name can name a model group: a valid tier
// (ValidTier), or a pattern that would be one but for its '*'s. Patterns
// never become subjects: they are matched against the names jobs ask for.
func ValidGroup(name string) bool {
	if name == AnyModel {
		return false
	}
	if !IsPattern(name) {
		return ValidTier(name)
	}
	return ValidTier(strings.ReplaceAll(name, "*", "x"))
}

// ValidModel reports whether a job may ask for model name: valid UTF-8 of
// 1 to MaxModelLen bytes with no space, control character, '*' or '>'.
// Dots and slashes are allowed ("openai/gpt-4.1-mini").
func ValidModel(name string) bool {
	if name == "" || len(name) > MaxModelLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '*' || r == '>' || r >= 0x80 && r <= 0x9f {
			return false
		}
	}
	return true
}

// ModelSubject returns where a job asking for model is published, and the
// Llmq-Model header value it needs ("" for none): <prefix>.jobs.<model>
// when model is a valid tier name (and not "_"), else <prefix>.jobs._ with
// the name in the header. ok is false for a name ValidModel refuses.
func (s Subjects) ModelSubject(model string) (subject, header string, ok bool) {
	if !ValidModel(model) {
		return "", "", false
	}
	if model != AnyModel && ValidTier(model) {
		return s.Jobs(model), "", true
	}
	return s.ModelJobs(), model, true
}

// Pattern is a compiled wildcard model group: '*' matches any run of
// characters (none included), everything else itself, and the pattern
// must match the whole name ("openai/*" matches "openai/gpt-4o-mini", not
// "azure/openai/gpt-4o"). LiteLLM's router matches the start of the name
// only; a whole match keeps "a/*-mini" from taking "a/x-mini-2" and
// calling "a/x-mini".
type Pattern struct {
	Name string
	re   *regexp.Regexp
	// length and complexity rank patterns as LiteLLM does (see
	// SortPatterns).
	length, complexity int
}

// CompilePattern compiles a model group name holding '*'s.
func CompilePattern(name string) Pattern {
	var b strings.Builder
	b.WriteString(`^`)
	p := Pattern{Name: name}
	for i, part := range strings.Split(name, "*") {
		if i > 0 {
			b.WriteString(`(.*)`)
			p.length += 4     // LiteLLM's regex writes a '*' as "(.*)"
			p.complexity += 3 // '(', '*', ')'
		}
		b.WriteString(regexp.QuoteMeta(part))
		for _, r := range part {
			p.length++
			if strings.ContainsRune(pyEscaped, r) {
				p.length++     // Python's re.escape puts a '\' before it
				p.complexity++ // the '\'
				if strings.ContainsRune(`+?\^$|()`, r) {
					p.complexity++
				}
			}
		}
	}
	b.WriteString(`$`)
	p.re = regexp.MustCompile(b.String())
	return p
}

// pyEscaped are the characters Python's re.escape (3.7 and later)
// escapes: LiteLLM ranks patterns by the length of the escaped form.
const pyEscaped = "()[]{}?*+-|^$\\.&~# \t\n\r\v\f"

// Match reports whether model matches p, with what each '*' matched.
func (p Pattern) Match(model string) ([]string, bool) {
	if p.re == nil {
		return nil, false
	}
	m := p.re.FindStringSubmatch(model)
	if m == nil {
		return nil, false
	}
	return m[1:], true
}

// SortPatterns orders patterns most specific first, as LiteLLM's router
// tries them: by the length of the pattern's regular expression (Python's
// re.escape of it, each '*' written "(.*)"), longer first, then by the
// number of regular-expression characters in it, more first. LiteLLM
// breaks the remaining ties by model_list order; llmq by name, so that
// every dispatcher, whatever order it learned its groups in, picks the
// same one.
func SortPatterns(ps []Pattern) {
	slices.SortStableFunc(ps, func(a, b Pattern) int {
		if c := cmp.Compare(b.length, a.length); c != 0 {
			return c
		}
		if c := cmp.Compare(b.complexity, a.complexity); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}
