package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Nothing silent: every key of a LiteLLM config is either acted on by llmq
// or reported. A key is acted on when it decodes into a field of Config
// (found by its yaml tag) and is not in the ignored table below; a key in
// the table is reported as "ignored: <why>"; any other key as unknown.
// Ignored keys that have a field are still decoded (and their os.environ/
// values resolved), so that code which starts using one finds it: whoever
// makes llmq act on a key removes it from this table (and the golden files
// of `llmq config check` say so).

// ignored maps a key's path pattern (list indexes written "[]"; "X.*" for
// every key of section X that has no entry of its own) to what llmq does
// not do. An empty note is a key that needs no warning although it has no
// field (none today).
var ignored = map[string]string{
	// Top level: LiteLLM proxy features outside routing.
	"include":            "llmq does not read included files yet: put their model_list here",
	"guardrails":         "llmq runs no guardrails",
	"policies":           "llmq runs no guardrails",
	"policy_attachments": "llmq runs no guardrails",
	"credential_list":    "llmq does not read credential_list yet: use os.environ/ in litellm_params",
	"files_settings":     "llmq has no files API",
	"finetune_settings":  "llmq has no fine-tuning API",
	"assistant_settings": "llmq has no assistants API",
	"callback_settings":  "llmq runs no LiteLLM callbacks (see its --metrics and logs)",
	"mcp_servers":        "llmq is not an MCP gateway",

	// Deployments.
	"model_list[].litellm_params.organization":            "llmq does not send an OpenAI organization yet",
	"model_list[].litellm_params.custom_llm_provider":     "llmq reads the provider from the model's prefix only: write <provider>/<model>",
	"model_list[].litellm_params.region_name":             "llmq does not route by region",
	"model_list[].litellm_params.mock_response":           "llmq does not mock calls (use a sim/ model)",
	"model_list[].litellm_params.mock_timeout":            "llmq does not mock calls (use a sim/ model)",
	"model_list[].litellm_params.input_cost_per_second":   "llmq prices calls per token only",
	"model_list[].litellm_params.output_cost_per_second":  "llmq prices calls per token only",
	"model_list[].litellm_params.additional_drop_params":  "llmq drops what a provider does not support, and nothing else",
	"model_list[].litellm_params.max_budget":              "llmq does not track budgets",
	"model_list[].litellm_params.budget_duration":         "llmq does not track budgets",
	"model_list[].litellm_params.use_in_pass_through":     "llmq has no pass-through endpoints",
	"model_list[].litellm_params.litellm_credential_name": "llmq does not read credential_list yet: use os.environ/ in litellm_params",
	"model_list[].litellm_params.tenant_id":               "llmq does not fetch Entra ID tokens itself: give one as azure_ad_token (or AZURE_AD_TOKEN)",
	"model_list[].litellm_params.client_id":               "llmq does not fetch Entra ID tokens itself: give one as azure_ad_token (or AZURE_AD_TOKEN)",
	"model_list[].litellm_params.client_secret":           "llmq does not fetch Entra ID tokens itself: give one as azure_ad_token (or AZURE_AD_TOKEN)",
	"model_list[].model_info.*":                           "llmq does not use this model_info key",
	"model_list[].model_info.supported_environments":      "llmq serves the deployment in every environment (LITELLM_ENVIRONMENT is not read)",

	// Routing.
	"router_settings.optional_pre_call_checks": "llmq's only pre-call check is the context window's (enable_pre_call_checks)",
	"router_settings.model_group_retry_policy": "llmq does not do retry policies per model group yet (retry_policy applies)",
	"router_settings.default_litellm_params":   "llmq does not apply default request parameters yet",
	"router_settings.redis_host":               "llmq shares routing state over NATS, not Redis",
	"router_settings.redis_port":               "llmq shares routing state over NATS, not Redis",
	"router_settings.redis_password":           "llmq shares routing state over NATS, not Redis",
	"router_settings.redis_url":                "llmq shares routing state over NATS, not Redis",
	"router_settings.cache_responses":          "llmq does not cache responses",
	"router_settings.cache_kwargs":             "llmq does not cache responses",
	"router_settings.cache_params":             "llmq does not cache responses",
	"router_settings.caching_groups":           "llmq does not cache responses",
	"router_settings.client_ttl":               "llmq keeps no client cache",
	"router_settings.provider_budget_config":   "llmq does not track budgets",
	"router_settings.set_verbose":              "use llmq's --log-level debug",
	"router_settings.debug_level":              "use llmq's --log-level debug",
	"router_settings.ignore_invalid_deployments": "llmq does not skip deployments it cannot serve yet: " +
		"`llmq config check` lists them",

	// litellm_settings: llmq reads the router keys (retries, time-out,
	// fallbacks, cooldowns); the rest configures LiteLLM's library.
	"litellm_settings.*":                "llmq does not use this LiteLLM setting",
	"litellm_settings.set_verbose":      "use llmq's --log-level debug",
	"litellm_settings.json_logs":        "use llmq's --log-format json",
	"litellm_settings.callbacks":        "llmq runs no LiteLLM callbacks (see its --metrics and logs)",
	"litellm_settings.success_callback": "llmq runs no LiteLLM callbacks (see its --metrics and logs)",
	"litellm_settings.failure_callback": "llmq runs no LiteLLM callbacks (see its --metrics and logs)",
	"litellm_settings.service_callback": "llmq runs no LiteLLM callbacks (see its --metrics and logs)",
	"litellm_settings.input_callback":   "llmq runs no LiteLLM callbacks (see its --metrics and logs)",
	"litellm_settings.cache":            "llmq does not cache responses",
	"litellm_settings.cache_params":     "llmq does not cache responses",
	"litellm_settings.max_budget":       "llmq does not track budgets",
	"litellm_settings.budget_duration":  "llmq does not track budgets",
	"litellm_settings.model_group_alias": "LiteLLM reads model_group_alias from router_settings only: " +
		"move it there",

	// general_settings: the proxy server's; llmq's gateway uses master_key.
	"general_settings.*":                 "a LiteLLM proxy setting llmq's gateway does not have",
	"general_settings.database_url":      "llmq keeps no database",
	"general_settings.store_model_in_db": "llmq keeps no database: deployments come from this file",
	"general_settings.alerting":          "llmq sends no alerts",
	"general_settings.custom_auth":       "llmq's gateway checks master_key only",
}

// requestParams are litellm_params LiteLLM sends with every call. llmq
// does not (yet).
var requestParams = []string{
	"temperature", "top_p", "top_k", "max_completion_tokens", "seed", "stop", "frequency_penalty",
	"presence_penalty", "response_format", "reasoning_effort", "thinking", "extra_body", "extra_headers",
	"headers", "n", "user", "logit_bias", "num_ctx", "stream_options", "parallel_tool_calls",
}

// otherProviders are litellm_params of providers llmq does not serve.
var otherProviders = []string{
	"vertex_project", "vertex_location", "vertex_credentials", "aws_access_key_id", "aws_secret_access_key",
	"aws_region_name", "aws_session_name", "aws_role_name", "aws_profile_name", "aws_session_token",
	"aws_bedrock_runtime_endpoint", "watsonx_project", "watsonx_region_name", "project_id",
}

func init() {
	for _, k := range requestParams {
		ignored["model_list[].litellm_params."+k] = "llmq does not send default request parameters from litellm_params yet"
	}
	for _, k := range otherProviders {
		ignored["model_list[].litellm_params."+k] = "a parameter of a provider llmq does not serve"
	}
}

// ignoredNote returns why llmq does not act on the key at pattern, a key
// of section; known says whether the key has a field (a section's "*"
// entry covers only keys without one).
func ignoredNote(pattern, section string, known bool) (string, bool) {
	if n, ok := ignored[pattern]; ok {
		return n, true
	}
	if known {
		return "", false
	}
	n, ok := ignored[section+".*"]
	return n, ok
}

// walker visits the document along Config's types: it reports ignored and
// unknown keys, resolves os.environ/ values where a field will hold them,
// and remembers which line holds which path for later messages.
type walker struct {
	lookup func(string) (string, bool)
	ds     *diags
	// lines maps a line to the path of the first value on it; ignoredLines
	// marks lines inside keys llmq ignores; envLines maps a line to the
	// variable its value came from.
	lines        map[int]string
	scalars      map[int][]scalarAt
	ignoredLines map[int]bool
	envLines     map[int]string
	// unset are os.environ/ scalars whose variable is not set: nulled after
	// the walk (not before, so that every alias of an anchor sees them).
	unset []*yaml.Node
	// deps holds the problems of each model_list entry.
	deps map[int][]Diagnostic
	// masterKey is the problem of general_settings.master_key, if any.
	masterKey *Diagnostic
}

// scalarAt is a scalar value and its path, to tell apart the values of a
// line (a flow mapping) in type errors.
type scalarAt struct {
	path, value string
	ignored     bool
}

// walkCtx is where the walker is: in which deployment (-1 for none), and
// whether inside a key llmq ignores.
type walkCtx struct {
	dep     int
	ignored bool
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var durationType = reflect.TypeFor[Duration]()

func (w *walker) walk(n *yaml.Node, t reflect.Type, path, pattern string, ctx walkCtx) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	if _, ok := w.lines[n.Line]; !ok {
		w.lines[n.Line] = path
	}
	if ctx.ignored {
		w.ignoredLines[n.Line] = true
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.ScalarNode:
		w.resolve(n, path, ctx)
		w.scalars[n.Line] = append(w.scalars[n.Line], scalarAt{path, n.Value, ctx.ignored})
	case t.Kind() == reflect.Struct && t != durationType && n.Kind == yaml.MappingNode:
		w.walkStruct(n, t, path, pattern, ctx)
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			w.walk(n.Content[i+1], t.Elem(), join(path, k), join(pattern, "*"), ctx)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			cctx := ctx
			if path == "model_list" {
				cctx.dep = i
			}
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), pattern+"[]", cctx)
		}
	case t.Kind() == reflect.Interface:
		w.walkAny(n, path, ctx)
	}
	// Anything else is a type mismatch the decoder reports.
}

// walkAny resolves the scalars of a value of any shape.
func (w *walker) walkAny(n *yaml.Node, path string, ctx walkCtx) {
	switch n.Kind {
	case yaml.ScalarNode:
		w.resolve(n, path, ctx)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.walkAny(n.Content[i+1], join(path, n.Content[i].Value), ctx)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			w.walkAny(c, fmt.Sprintf("%s[%d]", path, i), ctx)
		}
	case yaml.AliasNode:
		if n.Alias != nil {
			w.walkAny(n.Alias, path, ctx)
		}
	}
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path, pattern string, ctx walkCtx) {
	fields, inline := fieldsOf(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, v := n.Content[i], n.Content[i+1]
		k := kn.Value
		kpath, kpat := join(path, k), join(pattern, k)
		ft, known := fields[k]
		note, isIgnored := ignoredNote(kpat, pattern, known)
		if !ctx.ignored {
			switch {
			case isIgnored && note != "" && !asksNothing(v):
				w.ds.warnf(kn.Line, kpath, "ignored: %s%s", note, w.unsetSuffix(v))
			case !known && !isIgnored:
				w.ds.warnf(kn.Line, kpath, "unknown key, ignored%s%s", unknownHint(pattern), w.unsetSuffix(v))
			}
		}
		if known {
			cctx := ctx
			cctx.ignored = ctx.ignored || isIgnored
			if kpath == "environment_variables" {
				continue // values LiteLLM puts in the environment, as written
			}
			w.walk(v, ft, kpath, kpat, cctx)
		} else if !inline || ctx.ignored || isIgnored {
			w.markIgnored(v)
		}
	}
}

// markIgnored notes the lines of a value no field holds.
func (w *walker) markIgnored(n *yaml.Node) {
	w.ignoredLines[n.Line] = true
	for _, c := range n.Content {
		w.markIgnored(c)
	}
}

func unknownHint(section string) string {
	if section == "model_list[].litellm_params" {
		return " (LiteLLM would send it to the provider with every call)"
	}
	return ""
}

// unsetSuffix names the os.environ/ variables under n that are not set:
// harmless, since llmq does not use the key, but worth saying once.
func (w *walker) unsetSuffix(n *yaml.Node) string {
	var names []string
	var scan func(n *yaml.Node, depth int)
	scan = func(n *yaml.Node, depth int) {
		if depth > 64 {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			if name, ok := strings.CutPrefix(n.Value, EnvPrefix); ok {
				if _, set := w.lookup(name); !set && !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		case yaml.AliasNode:
			if n.Alias != nil {
				scan(n.Alias, depth+1)
			}
		default:
			for _, c := range n.Content {
				scan(c, depth+1)
			}
		}
	}
	scan(n, 0)
	switch len(names) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(" (%s%s is not set; llmq does not need it)", EnvPrefix, names[0])
	}
	return fmt.Sprintf(" (%s%s are not set; llmq does not need them)", EnvPrefix, strings.Join(names, ", "+EnvPrefix))
}

// asksNothing reports whether a value asks for nothing: null, false, or an
// empty list or mapping. An ignored key set so needs no warning.
func asksNothing(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" || n.Style == 0 && (n.Value == "" || n.Value == "~") {
			return true
		}
		var b bool
		return n.Style == 0 && yaml.Unmarshal([]byte(n.Value), &b) == nil && !b && n.Value != "0"
	case yaml.MappingNode, yaml.SequenceNode:
		return len(n.Content) == 0
	}
	return false
}

// resolve replaces an os.environ/NAME scalar by the variable's value. An
// unset variable is a problem of its deployment, an error elsewhere where
// llmq uses the value, and nothing to add where it does not (the key's
// warning names it).
func (w *walker) resolve(n *yaml.Node, path string, ctx walkCtx) {
	name, ok := strings.CutPrefix(n.Value, EnvPrefix)
	if !ok || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return
	}
	if v, set := w.lookup(name); set {
		w.envLines[n.Line] = name
		n.Value, n.Tag, n.Style, n.LineComment = v, "", 0, envMarker
		if !plainScalar(v) {
			n.Tag = "!!str"
		}
		return
	}
	w.unset = append(w.unset, n)
	msg := fmt.Sprintf("environment variable %s is not set (%s%s)", name, EnvPrefix, name)
	switch {
	case ctx.ignored:
	case path == "general_settings.master_key":
		w.masterKey = &Diagnostic{Severity: Warning, Line: n.Line, Path: path,
			Msg: msg + ": the gateway will refuse to start without it; dispatchers and workers do not use it"}
	case ctx.dep >= 0:
		w.deps[ctx.dep] = append(w.deps[ctx.dep], Diagnostic{Severity: Error, Line: n.Line, Path: path, Msg: msg})
	default:
		w.ds.errorf(n.Line, path, "%s", msg)
	}
}

// plainScalar reports whether v, as a YAML plain scalar, is a number or a
// boolean (and so decodes into numeric and boolean fields).
func plainScalar(v string) bool {
	var x any
	if err := yaml.Unmarshal([]byte(v), &x); err != nil {
		return false
	}
	switch x.(type) {
	case int, int64, uint64, float64, bool:
		return !strings.ContainsAny(v, "\n#:")
	}
	return false
}

// fieldsOf maps the yaml names of t's fields to their types, and says
// whether t keeps other keys in an inline map.
func fieldsOf(t reflect.Type) (map[string]reflect.Type, bool) {
	out := map[string]reflect.Type{}
	inline := false
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			if f.Type.Kind() == reflect.Map {
				inline = true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out, inline
}

// dedupe removes all but the last of keys repeated in a mapping, as
// PyYAML (and so LiteLLM) reads them, with a warning for each.
func dedupe(n *yaml.Node, path string, ds *diags, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			dedupe(c, path, ds, seen)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			dedupe(c, fmt.Sprintf("%s[%d]", path, i), ds, seen)
		}
	case yaml.MappingNode:
		last := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			last[n.Content[i].Value] = i
		}
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if j := last[k.Value]; j != i {
				ds.warnf(k.Line, join(path, k.Value), "duplicate key: the one at line %d wins (as in LiteLLM)", n.Content[j].Line)
				continue
			}
			kept = append(kept, k, n.Content[i+1])
			dedupe(n.Content[i+1], join(path, k.Value), ds, seen)
		}
		n.Content = kept
	}
}
