package config

import (
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/llmq/llmq/broker"
)

// Alias is one router_settings.model_group_alias entry: jobs asking for
// the alias go to the model group Model. LiteLLM writes it as the group's
// name, or as {model: <group>, hidden: true}; a hidden alias works but is
// not listed by the gateway's GET /v1/models.
type Alias struct {
	Model  string `yaml:"model"`
	Hidden bool   `yaml:"hidden"`
}

// UnmarshalYAML reads the name of a group, or {model, hidden}.
func (a *Alias) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!null" {
			a.Model = n.Value
		}
		return nil
	case yaml.MappingNode:
		type plain Alias
		return n.Decode((*plain)(a))
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a model_name, or a mapping {model: <model_name>, hidden: true}", n.Line)}}
}

// Aliases returns router_settings.model_group_alias as alias → model
// group, for dispatchers.
func (c *Config) Aliases() map[string]string {
	out := make(map[string]string, len(c.RouterSettings.ModelGroupAlias))
	for name, a := range c.RouterSettings.ModelGroupAlias {
		out[name] = a.Model
	}
	return out
}

// Routes reports where a job asking for model goes, as a dispatcher with
// this configuration routes it: an alias is replaced by its model first
// (as in LiteLLM, even when a model_name has the alias's name), then a
// model_name of that name, else the most specific wildcard model_name
// that matches (broker.SortPatterns). It returns the model group, or "".
func (c *Config) Routes(model string) string {
	if a, ok := c.RouterSettings.ModelGroupAlias[model]; ok {
		model = a.Model
	}
	tiers := c.Tiers()
	if tiers[model] && !broker.IsPattern(model) {
		return model
	}
	var ps []broker.Pattern
	for t := range tiers {
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

// names checks model names and aliases: "_" is reserved, wildcard
// model_names are patterns, an alias and its model must be names a job
// can ask for, and an alias that leads nowhere or hides a model_name is
// worth a warning.
func (f *finisher) names() {
	c, ds := f.c, f.ds
	for i := range c.ModelList {
		d := &c.ModelList[i]
		if d.ModelName == broker.AnyModel {
			var e *yaml.Node
			if i < len(f.entries) {
				e = f.entries[i]
			}
			ds.errorf(keyLine(e, "model_name"), fmt.Sprintf("model_list[%d].model_name", i),
				"model_name %q is reserved: <prefix>.jobs.%s is the subject of jobs that name their model in the Llmq-Model header", d.ModelName, broker.AnyModel)
		}
	}
	rs := deref(mapValue(f.doc, "router_settings"))
	node := deref(mapValue(rs, "model_group_alias"))
	aliases := c.RouterSettings.ModelGroupAlias
	names := make([]string, 0, len(aliases))
	for name := range aliases {
		names = append(names, name)
	}
	sort.Strings(names)
	tiers := c.Tiers()
	for _, name := range names {
		a := aliases[name]
		path := "router_settings.model_group_alias." + name
		line := keyLine(node, name)
		switch {
		case !broker.ValidModel(name):
			ds.errorf(line, path, "alias %.64q is not a name a job can ask for (1 to %d bytes, no spaces, control characters, * or >)", name, broker.MaxModelLen)
		case a.Model == "":
			ds.errorf(line, path, "alias %q names no model: write %s: <model_name>, or {model: <model_name>, hidden: true}", name, name)
		case !broker.ValidModel(a.Model):
			ds.errorf(line, path, "alias %q: %.64q is not a name a job can ask for", name, a.Model)
		case c.Routes(a.Model) == "":
			ds.warnf(line, path, "alias %q: %q is no model_name of model_list and no wildcard model_name matches it (only workers that announce it could serve it)", name, a.Model)
		}
		if tiers[name] {
			ds.warnf(line, path, "alias %q has the name of a model_name: jobs asking for it go to %q (the alias wins, as in LiteLLM)", name, a.Model)
		}
	}
}
