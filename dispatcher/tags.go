package dispatcher

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// Tag routing and pre-call checks (LiteLLM's router_settings
// enable_tag_filtering and enable_pre_call_checks) narrow the workers a
// job may go to, before the strategy picks among them:
//
//   - Tags (Config.TagFiltering): a job with tags goes to the deployments
//     that have one of them (all of them with Config.TagMatchAll), else to
//     those tagged "default", else it is refused; a job without tags goes
//     to the deployments tagged "default" when there are any, else to all.
//     As in LiteLLM this is decided among the healthy (not cooling)
//     deployments: when the matching ones all rest, a tagged job goes to
//     the default ones.
//   - Pre-call checks: a worker with a known window refuses a prompt over
//     it and bounces the job with its estimate; from then on the job goes
//     only to deployments whose window (in their beats) is unknown or
//     large enough (see precallSkip).

// defaultTag marks the deployments that take untagged jobs, and tagged
// jobs no deployment matches.
const defaultTag = "default"

// tagScope is which of a tier's workers a job's tags allow.
type tagScope uint8

const (
	scopeAny     tagScope = iota // tags do not narrow the choice
	scopeMatch                   // workers with the job's tags
	scopeDefault                 // workers tagged default
	scopeNone                    // none: the job's tags match nothing
)

// selection is what narrows the workers a job may go to, carried with the
// job (pending.sel; nil, the zero value and one whose filter is off with
// no tokens narrow nothing). Copies of a pending job share it: it is read
// and written only with d.mu held.
type selection struct {
	// filter is Config.TagFiltering, all Config.TagMatchAll; tags are the
	// job's (nil: untagged).
	filter, all bool
	tags        []string
	// tokens is the prompt estimate a worker's pre-call check sent, 0 when
	// none did.
	tokens int
	// scope is set by prepare for the tier being picked from.
	scope tagScope
}

// prepare sets s.scope for tier t at now: which of its workers the job's
// tags allow, decided among the tier's healthy workers. Called with d.mu
// held, before picking from t.
func (s *selection) prepare(t *tier, now time.Time) {
	if s == nil {
		return
	}
	s.scope = scopeAny
	if !s.filter {
		return
	}
	match, def := false, false
	for _, w := range t.workers {
		if !t.healthy(w, now) {
			continue
		}
		match = match || len(s.tags) > 0 && tagsMatch(w.hb.Tags, s.tags, s.all)
		def = def || slices.Contains(w.hb.Tags, defaultTag)
	}
	switch {
	case match:
		s.scope = scopeMatch
	case def:
		s.scope = scopeDefault
	case len(s.tags) > 0:
		s.scope = scopeNone
	}
}

// allows reports whether the job may go to w (after prepare).
func (s *selection) allows(w *worker) bool {
	if s == nil {
		return true
	}
	switch s.scope {
	case scopeMatch:
		if !tagsMatch(w.hb.Tags, s.tags, s.all) {
			return false
		}
	case scopeDefault:
		if !slices.Contains(w.hb.Tags, defaultTag) {
			return false
		}
	case scopeNone:
		return false
	}
	return s.fits(w)
}

// fits reports whether the job's prompt fits w's window, as far as the
// dispatcher knows either.
func (s *selection) fits(w *worker) bool {
	return s.tokens <= 0 || w.hb.MaxInputTokens <= 0 || s.tokens <= w.hb.MaxInputTokens
}

// tagsMatch reports whether a deployment with tags dep takes a job with
// tags job: one tag in common, or (all) every job tag.
func tagsMatch(dep, job []string, all bool) bool {
	for _, t := range job {
		has := slices.Contains(dep, t)
		if has && !all {
			return true
		}
		if !has && all {
			return false
		}
	}
	return all && len(job) > 0
}

// healthy reports whether w counts for tag and pre-call decisions: ready,
// and not cooling (a tier's only deployment resting on rate limits still
// takes jobs, see usable).
func (t *tier) healthy(w *worker, now time.Time) bool {
	if w.hb.State != schema.StateReady {
		return false
	}
	return !w.cooling(now) || w.hb.CoolingReason == schema.CodeRateLimited && t.deployments() == 1
}

// canTake reports whether tier t has a healthy worker job p may go to: a
// fallback skips a tier whose deployments none take the job's tags or
// fit its prompt. Called with d.mu held.
func (t *tier) canTake(p *pending, now time.Time) bool {
	if p.sel == nil || !p.sel.filter && p.sel.tokens <= 0 {
		return true
	}
	p.sel.prepare(t, now)
	for _, w := range t.workers {
		if t.healthy(w, now) && p.sel.allows(w) {
			return true
		}
	}
	return false
}

// jobTags returns the tags of a job arriving from a producer: the
// Llmq-Tags header when present, else the body's top-level tags, else its
// metadata.tags (each a list, or a comma-separated string). The body is
// read only when it holds the bytes "tags" at all, and only for those two
// fields; the tags found there are written to the Llmq-Tags header, so
// that retries and fallbacks of the job need not read it again. Called
// without d.mu: a body can be large.
func jobTags(m *nats.Msg) []string {
	if v, ok := m.Header[schema.HeaderTags]; ok {
		if len(v) == 0 {
			return nil
		}
		return schema.ParseTags(v[0])
	}
	if !bytes.Contains(m.Data, tagsKey) {
		return nil
	}
	var probe struct {
		Tags     schema.TagList `json:"tags" msgpack:"tags"`
		Metadata struct {
			Tags schema.TagList `json:"tags" msgpack:"tags"`
		} `json:"metadata" msgpack:"metadata"`
	}
	if err := broker.CodecOf(m).Unmarshal(m.Data, &probe); err != nil {
		return nil // the worker refuses the body, with the reason
	}
	tags := []string(probe.Tags)
	if len(tags) == 0 {
		tags = probe.Metadata.Tags
	}
	if len(tags) > 0 {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header[schema.HeaderTags] = []string{strings.Join(tags, ",")}
	}
	return tags
}

var tagsKey = []byte("tags")

// selectionOf is the selection of a job a worker bounced: its tags from
// Llmq-Tags (when the dispatcher filters by tag) and the prompt estimate
// of a pre-call check, clamped like a beat's window; nil for neither.
func (d *Dispatcher) selectionOf(h nats.Header) *selection {
	s := &selection{filter: d.cfg.TagFiltering, all: d.cfg.TagMatchAll}
	if s.filter {
		s.tags = schema.ParseTags(h.Get(schema.HeaderTags))
	}
	if v := h.Get(schema.HeaderPromptTokens); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			s.tokens = min(n, broker.MaxInputTokens+1)
		}
	}
	if !s.filter && s.tokens == 0 {
		return nil
	}
	return s
}

// tagRefusal is the answer to a job whose tags no healthy deployment of t
// takes (nil when some does, or when t has no healthy worker: then the
// job waits or is told of the rest as any other). Called with d.mu held
// after p.sel.prepare(t, now).
func (t *tier) tagRefusal(p *pending, now time.Time) *schema.Error {
	if p.sel == nil || p.sel.scope != scopeNone {
		return nil
	}
	for _, w := range t.workers {
		if t.healthy(w, now) {
			how := "any"
			if p.sel.all {
				how = "all"
			}
			return schema.Errorf(schema.CodeNoDeployments,
				"no deployment of tier %q is allowed by the job's tags (tags configuration, router_settings.enable_tag_filtering): none has %s of [%s], and none is tagged %q",
				t.name, how, strings.Join(p.sel.tags, ", "), defaultTag)
		}
	}
	return nil
}
