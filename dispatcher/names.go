package dispatcher

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
)

// How the name a job asks for becomes a tier (docs/protocol.md §2.1).
//
// A job names its model by its subject, <prefix>.jobs.<name>, or on
// <prefix>.jobs._ by its Llmq-Model header (any model name, also those
// that cannot be a subject). The name is resolved as LiteLLM's router
// does: an alias (Config.Aliases, router_settings.model_group_alias) is
// replaced by its group first; then a tier of that name; then the most
// specific wildcard group that matches the name (broker.SortPatterns);
// then, for a name without a provider ("gpt-4o"), the same with the
// provider LiteLLM infers ("openai/gpt-4o"). A job routed to a wildcard
// group carries the name it asked for to the worker in
// Llmq-Requested-Model, which only the dispatcher sets (producers' copies
// are removed as the job arrives: see producerHeader).

// names is what the dispatcher keeps to resolve names. Guarded by d.mu.
type names struct {
	// patterns are the wildcard groups among the tiers, most specific
	// first, and by name; stale when dirty (a tier was learned or
	// forgotten).
	patterns []broker.Pattern
	byName   map[string]broker.Pattern
	dirty    bool
}

// checkAliases validates Config.Aliases: every alias and its group are
// names a job could ask for.
func checkAliases(aliases map[string]string) error {
	for a, g := range aliases {
		if !broker.ValidModel(a) || !broker.ValidModel(g) {
			return fmt.Errorf("dispatcher: alias %.64q of %.64q: both must be valid model names", a, g)
		}
	}
	return nil
}

// jobModel returns the name job m asks for: the tier token of its subject
// (subjectName), or on <prefix>.jobs._ its Llmq-Model header.
func jobModel(m *nats.Msg, subjectName string) (string, *schema.Error) {
	if subjectName != broker.AnyModel {
		return subjectName, nil
	}
	v := m.Header.Get(schema.HeaderModel)
	switch {
	case v == "":
		return "", schema.Errorf(schema.CodeBadRequest, "a job on the subject <prefix>.jobs.%s names its model in the header %s, and this one has none", broker.AnyModel, schema.HeaderModel)
	case !broker.ValidModel(v):
		return "", schema.Errorf(schema.CodeUnknownTier, "model %.64q is not a valid model name (1 to %d bytes, no spaces, control characters, * or >)", v, broker.MaxModelLen)
	}
	return v, nil
}

// resolve returns the tier a job asking for name goes to, and the name
// to ask its workers for when that tier is a wildcard group, or nil.
// Called with d.mu held.
func (d *Dispatcher) resolve(name string) (*tier, string) {
	if g, ok := d.cfg.Aliases[name]; ok {
		name = g
	}
	if t := d.tiers[name]; t != nil && !broker.IsPattern(name) {
		return t, name
	}
	if !broker.ValidModel(name) {
		return nil, name
	}
	if t := d.matchPattern(name); t != nil {
		return t, name
	}
	// LiteLLM tries a name without a provider with the one it infers.
	if !strings.Contains(name, "/") {
		if p := config.ProviderPrefix(name); p != "" {
			if t := d.matchPattern(p + "/" + name); t != nil {
				return t, p + "/" + name
			}
		}
	}
	return nil, name
}

// unknownModel is the answer to a job asking for a name no tier serves.
// Called with d.mu held.
func (d *Dispatcher) unknownModel(name string) *schema.Error {
	g, ok := d.cfg.Aliases[name]
	if !ok {
		return d.unknownTier(name)
	}
	e := d.unknownTier(g)
	e.Message = fmt.Sprintf("alias %q: %s", name, e.Message)
	return e
}

// matchPattern returns the most specific wildcard tier that matches name,
// or nil. Called with d.mu held.
func (d *Dispatcher) matchPattern(name string) *tier {
	d.sortPatterns()
	for _, p := range d.names.patterns {
		if _, ok := p.Match(name); ok {
			return d.tiers[p.Name]
		}
	}
	return nil
}

// sortPatterns rebuilds the pattern list when tiers changed. Called with
// d.mu held.
func (d *Dispatcher) sortPatterns() {
	if !d.names.dirty && d.names.byName != nil {
		return
	}
	d.names.patterns = d.names.patterns[:0]
	d.names.byName = map[string]broker.Pattern{}
	for name := range d.tiers {
		if broker.IsPattern(name) {
			p := broker.CompilePattern(name)
			d.names.patterns = append(d.names.patterns, p)
			d.names.byName[name] = p
		}
	}
	broker.SortPatterns(d.names.patterns)
	d.names.dirty = false
}

// route resolves the tier of job m asking for name, marks the job with
// the model it asked for when that tier is a wildcard group, and returns
// the tier, or nil. Called with d.mu held.
func (d *Dispatcher) route(m *nats.Msg, name string) *tier {
	t, model := d.resolve(name)
	if t != nil {
		setRequested(m, t, model)
	}
	return t
}

// setRequested sets the Llmq-Requested-Model of job m going to tier t: the
// model it asked for when t is a wildcard group; none otherwise.
func setRequested(m *nats.Msg, t *tier, model string) {
	if !broker.IsPattern(t.name) {
		m.Header.Del(schema.HeaderRequestedModel)
		return
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header[schema.HeaderRequestedModel] = []string{model}
}

// fallbackTier resolves a fallback's name for job m as a job's name is
// resolved, and returns the tier and the model the job asks it for; a
// wildcard group named as such takes the job only with the model it asked
// for already, if the pattern matches it. Called with d.mu held.
func (d *Dispatcher) fallbackTier(name string, m *nats.Msg) (*tier, string) {
	if t := d.tiers[name]; t != nil && broker.IsPattern(name) {
		d.sortPatterns()
		asked := m.Header.Get(schema.HeaderRequestedModel)
		if _, ok := d.names.byName[name].Match(asked); ok && asked != "" {
			return t, asked
		}
		return nil, ""
	}
	return d.resolve(name)
}

// handBackSubject is where a job for tierName is published again for
// another dispatcher: the tier's subject; for a wildcard group, the name
// the job asked for (on <prefix>.jobs._ with Llmq-Model when it cannot be
// a subject). false when the job carries no valid name to ask for.
func (d *Dispatcher) handBackSubject(m *nats.Msg, tierName string) (string, bool) {
	if !broker.IsPattern(tierName) {
		return d.cfg.Subjects.Jobs(tierName), true
	}
	subject, header, ok := d.cfg.Subjects.ModelSubject(m.Header.Get(schema.HeaderRequestedModel))
	if ok && header != "" {
		m.Header[schema.HeaderModel] = []string{header}
	}
	return subject, ok
}

// groupOf is the tier job m (on the jobs subject of name) was for, for
// the Observer's labels: "" for a name no tier serves. Called with d.mu
// held.
func (d *Dispatcher) groupOf(m *nats.Msg, name string) string {
	if d.tiers[name] != nil {
		return name
	}
	if name == broker.AnyModel {
		name = m.Header.Get(schema.HeaderModel)
	}
	if t, _ := d.resolve(name); t != nil {
		return t.name
	}
	return ""
}
