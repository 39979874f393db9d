package broker

import (
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
