package gateway

import (
	"fmt"
	"slices"

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
	var ps []broker.Pattern
	for _, t := range g.tiers() {
		if broker.IsPattern(t) {
			ps = append(ps, broker.CompilePattern(t))
		}
	}
	broker.SortPatterns(ps)
	for _, p := range ps {
		if _, ok := p.Match(model); ok {
			return p.Name
		}
	}
	return ""
}

// label is the tier a request for model is counted under: the model when
// it is a tier or alias, the wildcard tier that matches it (so that the
// names clients make up cannot grow a label set), else the model itself.
func (g *Gateway) label(model string) string {
	if !broker.IsPattern(model) && slices.Contains(g.tiers(), model) {
		return model
	}
	if m := g.matchName(model); m != "" {
		return m
	}
	return model
}
