package gateway

import (
	"fmt"
	"slices"
	"time"

	"github.com/llmq/llmq/broker"
)

// Alias is a name requests may use for a model group
// (router_settings.model_group_alias). The dispatchers resolve it; the
// gateway lists it in GET /v1/models unless Hidden.
type Alias struct {
	Model  string
	Hidden bool
}

// checkNames validates the configured aliases.
func checkNames(aliases map[string]Alias) error {
	for name, a := range aliases {
		if !broker.ValidModel(name) || !broker.ValidModel(a.Model) {
			return fmt.Errorf("gateway: alias %.64q of %.64q: both must be valid model names", name, a.Model)
		}
	}
	return nil
}

// listed returns what GET /v1/models lists, sorted: the tiers the gateway
// knows except wildcard patterns (no client can ask for "openai/*"; it
// asks for a name one matches), and the aliases not hidden.
func (g *Gateway) listed() []string {
	var out []string
	for _, t := range g.tiers() {
		if !broker.IsPattern(t) {
			out = append(out, t)
		}
	}
	for name, a := range g.cfg.Aliases {
		if !a.Hidden && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// matchName returns how the gateway knows model, if it is not a tier of
// that name: the alias itself, or the most specific wildcard tier that
// matches it ("" for none).
func (g *Gateway) matchName(model string) string {
	if _, ok := g.cfg.Aliases[model]; ok {
		return model
	}
	if !broker.ValidModel(model) {
		return ""
	}
	ps := g.fleet.patterns(time.Now())
	broker.SortPatterns(ps)
	for _, p := range ps {
		if _, ok := p.Match(model); ok {
			return p.Name
		}
	}
	return ""
}

// patterns are the wildcard tiers the fleet knows, compiled.
func (f *fleet) patterns(now time.Time) []broker.Pattern {
	var out []broker.Pattern
	for t := range f.configured {
		if broker.IsPattern(t) {
			out = append(out, broker.CompilePattern(t))
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweepLocked(now, false)
	for t, seen := range f.tiers {
		if broker.IsPattern(t) && !f.configured[t] && (seen.workers > 0 || now.Before(seen.answered)) {
			out = append(out, broker.CompilePattern(t))
		}
	}
	return out
}

// label is the tier a request for model is counted under (answered: it
// got a completion): a tier the gateway knows of that name; else the
// alias, or the wildcard tier that matches the name (so that the names
// clients make up cannot grow a label set); else, for a completion, the
// name as a tier the fleet learns within its cap; else "".
func (g *Gateway) label(model string, answered bool) string {
	now := time.Now()
	if !broker.IsPattern(model) && g.fleet.known(model, now) {
		return model
	}
	if m := g.matchName(model); m != "" {
		return m
	}
	if answered && broker.ValidTier(model) && g.fleet.answered(model, now) {
		return model
	}
	return ""
}
