package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/llmq/llmq/broker"
)

// Config is a whole configuration file.
type Config struct {
	ModelList            []Deployment      `yaml:"model_list"`
	RouterSettings       RouterSettings    `yaml:"router_settings"`
	LitellmSettings      LitellmSettings   `yaml:"litellm_settings"`
	GeneralSettings      GeneralSettings   `yaml:"general_settings"`
	EnvironmentVariables map[string]string `yaml:"environment_variables"`
	Settings             Settings          `yaml:"llmq_settings"`

	// Warnings lists what Load noticed but did not reject: unknown keys and
	// LiteLLM settings llmq does not use.
	Warnings []string `yaml:"-"`
}

// Deployment is one model_list entry: a provider deployment serving a tier.
type Deployment struct {
	// ModelName is the tier (LiteLLM's model group) the deployment serves.
	ModelName     string        `yaml:"model_name"`
	LitellmParams LitellmParams `yaml:"litellm_params"`
	ModelInfo     ModelInfo     `yaml:"model_info"`
	// RPM and TPM may be given on the entry too, as LiteLLM allows (see
	// Limits).
	RPM int `yaml:"rpm"`
	TPM int `yaml:"tpm"`

	// ID is model_info.id, or a stable hash of the deployment's params.
	ID string `yaml:"-"`
	// envErr is the first os.environ/ reference that could not be resolved.
	envErr error
}

// Err reports a problem that keeps the deployment from running: an
// os.environ/ variable that is not set. It names the variable and the
// deployment.
func (d *Deployment) Err() error { return d.envErr }

// String names the deployment for messages: "tier1 (ollama/qwen2.5-coder:14b, id tier1-1a2b3c4d)".
func (d *Deployment) String() string {
	return fmt.Sprintf("%s (%s, id %s)", d.ModelName, d.LitellmParams.Model, d.ID)
}

// LitellmParams are the parameters of a deployment, named as LiteLLM names
// them.
type LitellmParams struct {
	// Model is "<provider>/<model>", e.g. "ollama/qwen2.5-coder:14b".
	Model      string `yaml:"model"`
	APIBase    string `yaml:"api_base"`
	APIKey     string `yaml:"api_key"`
	APIVersion string `yaml:"api_version"`
	// Weight, RPM and TPM weight simple-shuffle (the first one set wins).
	// RPM and TPM are also the deployment's usage limits (see
	// Deployment.Limits).
	Weight float64 `yaml:"weight"`
	RPM    int     `yaml:"rpm"`
	TPM    int     `yaml:"tpm"`
	// MaxParallelRequests is the worker's concurrency. Default: the
	// provider's (Ollama 4, simulator its slots, cloud providers 32).
	MaxParallelRequests int `yaml:"max_parallel_requests"`
	// Timeout bounds one call; StreamTimeout one streamed call. Default:
	// router_settings.timeout, then 600 s.
	Timeout       Duration `yaml:"timeout"`
	StreamTimeout Duration `yaml:"stream_timeout"`
	// Order: lower is tried first; 0 means unset.
	Order              int      `yaml:"order"`
	Tags               []string `yaml:"tags"`
	InputCostPerToken  float64  `yaml:"input_cost_per_token"`
	OutputCostPerToken float64  `yaml:"output_cost_per_token"`
	// MaxTokens, when set, is the default output limit for jobs that set
	// none.
	MaxTokens int `yaml:"max_tokens"`
	// Sim configures the built-in simulator provider (model "sim/<name>").
	Sim SimParams `yaml:"sim"`
}

// SimParams configure a simulated deployment.
type SimParams struct {
	// TTFT is the time to the first token. Default 0.
	TTFT Duration `yaml:"ttft"`
	// TokensPerSecond is the generation speed; 0 means instant.
	TokensPerSecond float64 `yaml:"tokens_per_second"`
	// Parallel is the number of slots; more concurrent calls wait. Default 8.
	Parallel int `yaml:"parallel"`
	// ErrorRate is the share of calls that fail with a provider error.
	ErrorRate float64 `yaml:"error_rate"`
	// Tokens is the reply length when the job sets no max_tokens. Default 16.
	Tokens int `yaml:"tokens"`
}

// ModelInfo is a deployment's model_info block.
type ModelInfo struct {
	ID string `yaml:"id"`
	// Other model_info keys (LiteLLM has many) are kept, not interpreted.
	Extra map[string]any `yaml:",inline"`
}

// Strategy names. LiteLLM's spellings are accepted as aliases.
const (
	SimpleShuffle   = "simple-shuffle"
	LeastBusy       = "least-busy"
	LatencyBased    = "latency-based"
	WeightedShuffle = "weighted-shuffle"
	// UsageBased is LiteLLM's usage-based-routing and
	// usage-based-routing-v2: the lowest rpm/tpm usage relative to limits.
	UsageBased = "usage-based"
	// CostBased is LiteLLM's cost-based-routing: the cheapest per token.
	CostBased = "cost-based"
)

// Strategies lists the routing strategies llmq implements.
var Strategies = []string{SimpleShuffle, LeastBusy, LatencyBased, WeightedShuffle, UsageBased, CostBased}

// RouterSettings are LiteLLM's router_settings that llmq honours.
type RouterSettings struct {
	// RoutingStrategy: simple-shuffle (default), least-busy, latency-based
	// (LiteLLM: latency-based-routing), weighted-shuffle, usage-based
	// (usage-based-routing, usage-based-routing-v2), cost-based
	// (cost-based-routing).
	RoutingStrategy string `yaml:"routing_strategy"`
	// RoutingStrategyArgs: ttl (latency window) and lowest_latency_buffer.
	RoutingStrategyArgs StrategyArgs `yaml:"routing_strategy_args"`
	// NumRetries per job. Default 2 (set 0 to disable).
	NumRetries *int `yaml:"num_retries"`
	// Timeout per call. Default 600 s. (Pointers tell an explicit 0 from
	// unset, for the merge with litellm_settings.)
	Timeout       *Duration `yaml:"timeout"`
	StreamTimeout Duration  `yaml:"stream_timeout"`
	// RetryAfter is the least wait before a retry.
	RetryAfter             Duration              `yaml:"retry_after"`
	RetryPolicy            map[string]int        `yaml:"retry_policy"`
	AllowedFailsPolicy     map[string]int        `yaml:"allowed_fails_policy"`
	Fallbacks              []map[string][]string `yaml:"fallbacks"`
	ContextWindowFallbacks []map[string][]string `yaml:"context_window_fallbacks"`
	ContentPolicyFallbacks []map[string][]string `yaml:"content_policy_fallbacks"`
	DefaultFallbacks       []string              `yaml:"default_fallbacks"`
	// MaxFallbacks. Default 5.
	MaxFallbacks *int `yaml:"max_fallbacks"`
	// AllowedFails within a minute before a cooldown. Default 3.
	AllowedFails *int `yaml:"allowed_fails"`
	// CooldownTime. Default 5 s.
	CooldownTime        *Duration `yaml:"cooldown_time"`
	DisableCooldowns    bool      `yaml:"disable_cooldowns"`
	EnablePreCallChecks bool      `yaml:"enable_pre_call_checks"`
	// LiteLLM settings that only matter to a LiteLLM proxy; accepted so
	// that existing files load, and otherwise unused.
	RedisHost     string `yaml:"redis_host"`
	RedisPort     any    `yaml:"redis_port"`
	RedisPassword string `yaml:"redis_password"`
}

// StrategyArgs are routing_strategy_args.
type StrategyArgs struct {
	// TTL is the latency window. Default 60 s... in llmq's latency-based
	// routing the window is the worker's recent calls; ttl is accepted and
	// unused.
	TTL Duration `yaml:"ttl"`
	// LowestLatencyBuffer: pick randomly among workers within this share
	// of the best latency (0.5 = 50%). Default 0.
	LowestLatencyBuffer float64 `yaml:"lowest_latency_buffer"`
}

// LitellmSettings are the litellm_settings llmq reads. LiteLLM has many
// more (callbacks, caching, ...): those load and are reported as unused.
type LitellmSettings struct {
	NumRetries             *int                  `yaml:"num_retries"`
	RequestTimeout         *Duration             `yaml:"request_timeout"`
	Fallbacks              []map[string][]string `yaml:"fallbacks"`
	ContextWindowFallbacks []map[string][]string `yaml:"context_window_fallbacks"`
	ContentPolicyFallbacks []map[string][]string `yaml:"content_policy_fallbacks"`
	DefaultFallbacks       []string              `yaml:"default_fallbacks"`
	MaxFallbacks           *int                  `yaml:"max_fallbacks"`
	AllowedFails           *int                  `yaml:"allowed_fails"`
	CooldownTime           *Duration             `yaml:"cooldown_time"`
	DropParams             bool                  `yaml:"drop_params"`
	SetVerbose             bool                  `yaml:"set_verbose"`
	Other                  map[string]any        `yaml:",inline"`
}

// GeneralSettings are the general_settings llmq reads.
type GeneralSettings struct {
	// MasterKey, when set, is the bearer key the HTTP gateway requires.
	MasterKey string         `yaml:"master_key"`
	Other     map[string]any `yaml:",inline"`
}

// Settings are llmq's own settings (llmq_settings).
type Settings struct {
	// Prefix of every subject. Default "llm".
	Prefix string `yaml:"prefix"`
	// HeartbeatInterval of workers. Default 1 s.
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// MaxQueue is how many jobs a dispatcher holds per tier waiting for a
	// free worker. Default 10000.
	MaxQueue int `yaml:"max_queue"`
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(b, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads and validates a configuration. lookup resolves os.environ/
// references (os.LookupEnv in Load). A reference inside a deployment that
// cannot be resolved does not fail Parse: it is that deployment's Err, so a
// dispatcher need not hold the keys of workers it never runs.
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	cfg := &Config{}
	if len(root.Content) == 0 {
		return nil, errors.New("empty configuration: want a model_list")
	}
	doc := root.Content[0]
	envVars := environmentVariables(doc)
	lookupAll := func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		v, ok := envVars[name]
		return v, ok
	}
	// Unknown keys come from the file as written, so their line numbers
	// are the file's; values come from the tree with os.environ/ resolved.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	var probe Config
	var warnings []string
	if err := strict.Decode(&probe); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				if w, ok := unknownKey(msg); ok {
					warnings = append(warnings, w)
				}
			}
		}
	}
	raw := rawIdentities(doc)
	depErrs, err := resolveEnv(doc, lookupAll)
	if err != nil {
		return nil, err
	}
	if err := doc.Decode(cfg); err != nil {
		return nil, err
	}
	cfg.Warnings = warnings
	for i := range cfg.ModelList {
		cfg.ModelList[i].envErr = depErrs[i]
	}
	if err := cfg.finish(raw); err != nil {
		return nil, err
	}
	return cfg, nil
}

var unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type config\.(\w+)$`)

var sectionOf = map[string]string{
	"Config":          "top level",
	"Deployment":      "model_list entry",
	"LitellmParams":   "litellm_params",
	"SimParams":       "litellm_params.sim",
	"RouterSettings":  "router_settings",
	"StrategyArgs":    "routing_strategy_args",
	"Settings":        "llmq_settings",
	"LitellmSettings": "litellm_settings",
	"GeneralSettings": "general_settings",
	"ModelInfo":       "model_info",
}

func unknownKey(msg string) (string, bool) {
	m := unknownFieldRE.FindStringSubmatch(msg)
	if m == nil {
		return "", false
	}
	return fmt.Sprintf("line %s: unknown key %q in %s (ignored)", m[1], m[2], sectionOf[m[3]]), true
}

func environmentVariables(doc *yaml.Node) map[string]string {
	out := map[string]string{}
	if v := mapValue(doc, "environment_variables"); v != nil && v.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(v.Content); i += 2 {
			out[v.Content[i].Value] = v.Content[i+1].Value
		}
	}
	return out
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// EnvPrefix marks a value read from the environment.
const EnvPrefix = "os.environ/"

// envMarker tags resolved nodes, so errors about them do not repeat a
// value that may be a secret.
const envMarker = "# llmq: from the environment"

// resolveEnv replaces os.environ/NAME scalars in place. Failures inside
// model_list[i] are returned per deployment; others fail the whole file.
func resolveEnv(doc *yaml.Node, lookup func(string) (string, bool)) (map[int]error, error) {
	depErrs := map[int]error{}
	var walk func(n *yaml.Node, path string, dep int) error
	walk = func(n *yaml.Node, path string, dep int) error {
		switch n.Kind {
		case yaml.ScalarNode:
			if !strings.HasPrefix(n.Value, EnvPrefix) {
				return nil
			}
			name := strings.TrimPrefix(n.Value, EnvPrefix)
			v, ok := lookup(name)
			if !ok {
				err := fmt.Errorf("environment variable %s is not set (%s: %s%s)", name, path, EnvPrefix, name)
				if dep >= 0 {
					if depErrs[dep] == nil {
						depErrs[dep] = err
					}
					return nil
				}
				return err
			}
			n.Value, n.Tag, n.Style, n.LineComment = v, "", 0, envMarker
			if _, err := strconv.ParseFloat(v, 64); err != nil && v != "true" && v != "false" {
				n.Tag = "!!str"
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				if err := walk(n.Content[i+1], p, dep); err != nil {
					return err
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				d := dep
				if path == "model_list" {
					d = i
				}
				if err := walk(c, fmt.Sprintf("%s[%d]", path, i), d); err != nil {
					return err
				}
			}
		case yaml.AliasNode:
			// Walk the anchor for each use, so every deployment that uses
			// it gets its own error.
			if n.Alias != nil {
				return walk(n.Alias, path, dep)
			}
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if err := walk(c, path, dep); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return depErrs, walk(doc, "", -1)
}

// finish validates, fills defaults and derived values.
func (c *Config) finish(raw []identity) error {
	if len(c.ModelList) == 0 {
		return errors.New("model_list: at least one deployment is required")
	}
	seen := map[string]int{}
	for i := range c.ModelList {
		d := &c.ModelList[i]
		if d.ModelName == "" {
			return fmt.Errorf("model_list[%d]: model_name is required", i)
		}
		if d.LitellmParams.Model == "" {
			return fmt.Errorf("model_list[%d] (%s): litellm_params.model is required", i, d.ModelName)
		}
		d.ID = d.ModelInfo.ID
		if d.ID == "" {
			id := identity{d.LitellmParams.Model, d.LitellmParams.APIBase}
			if i < len(raw) {
				id = raw[i]
			}
			d.ID = hashID(d.ModelName, id)
		}
		if j, dup := seen[d.ID]; dup {
			return fmt.Errorf("model_list[%d] and model_list[%d] have the same id %q: set model_info.id", j, i, d.ID)
		}
		seen[d.ID] = i
	}
	rs := &c.RouterSettings
	ls := &c.LitellmSettings
	// router_settings wins over litellm_settings for keys in both.
	inherit(&rs.NumRetries, ls.NumRetries)
	inherit(&rs.Timeout, ls.RequestTimeout)
	inherit(&rs.MaxFallbacks, ls.MaxFallbacks)
	inherit(&rs.AllowedFails, ls.AllowedFails)
	inherit(&rs.CooldownTime, ls.CooldownTime)
	inheritList(&rs.Fallbacks, ls.Fallbacks)
	inheritList(&rs.ContextWindowFallbacks, ls.ContextWindowFallbacks)
	inheritList(&rs.ContentPolicyFallbacks, ls.ContentPolicyFallbacks)
	inheritList(&rs.DefaultFallbacks, ls.DefaultFallbacks)
	unused := make([]string, 0, len(ls.Other))
	for k := range ls.Other {
		unused = append(unused, k)
	}
	sort.Strings(unused)
	for _, k := range unused {
		c.Warnings = append(c.Warnings, fmt.Sprintf("litellm_settings.%s is a LiteLLM setting llmq does not use (ignored)", k))
	}
	s, err := NormalizeStrategy(rs.RoutingStrategy)
	if err != nil {
		return fmt.Errorf("router_settings.routing_strategy: %w", err)
	}
	rs.RoutingStrategy = s
	tiers := c.Tiers()
	for _, fb := range [][]map[string][]string{rs.Fallbacks, rs.ContextWindowFallbacks, rs.ContentPolicyFallbacks} {
		for _, m := range fb {
			for from, to := range m {
				if !tiers[from] {
					c.Warnings = append(c.Warnings, fmt.Sprintf("fallbacks: %q is not a model_name of model_list", from))
				}
				for _, t := range to {
					if !tiers[t] {
						c.Warnings = append(c.Warnings, fmt.Sprintf("fallbacks: %q (fallback of %q) is not a model_name of model_list", t, from))
					}
				}
			}
		}
	}
	return nil
}

// NormalizeStrategy maps a strategy name (LiteLLM's spellings included) to
// llmq's; "" is simple-shuffle.
func NormalizeStrategy(s string) (string, error) {
	switch s {
	case "", SimpleShuffle:
		return SimpleShuffle, nil
	case LeastBusy:
		return LeastBusy, nil
	case LatencyBased, "latency-based-routing":
		return LatencyBased, nil
	case WeightedShuffle:
		return WeightedShuffle, nil
	case UsageBased, "usage-based-routing", "usage-based-routing-v2":
		return UsageBased, nil
	case CostBased, "cost-based-routing":
		return CostBased, nil
	}
	return "", fmt.Errorf("unknown routing strategy %q (llmq has %s)", s, strings.Join(Strategies, ", "))
}

// Tiers returns the set of model_name values.
func (c *Config) Tiers() map[string]bool {
	out := make(map[string]bool, len(c.ModelList))
	for _, d := range c.ModelList {
		out[d.ModelName] = true
	}
	return out
}

// Deployment returns the deployment with the given id (or, failing that,
// the only deployment of the tier of that name).
func (c *Config) Deployment(id string) (*Deployment, error) {
	var byTier []*Deployment
	for i := range c.ModelList {
		d := &c.ModelList[i]
		if d.ID == id {
			return d, nil
		}
		if d.ModelName == id {
			byTier = append(byTier, d)
		}
	}
	if len(byTier) == 1 {
		return byTier[0], nil
	}
	ids := make([]string, 0, len(c.ModelList))
	for _, d := range c.ModelList {
		ids = append(ids, d.ID)
	}
	return nil, fmt.Errorf("no deployment %q (the config has %s)", id, strings.Join(ids, ", "))
}

// identity is what identifies a deployment, as written in the file
// (before os.environ/ is resolved, so that every process computes the same
// id whatever its environment).
type identity struct{ model, apiBase string }

// rawIdentities reads model and api_base of each model_list entry as
// written.
func rawIdentities(doc *yaml.Node) []identity {
	list := mapValue(doc, "model_list")
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]identity, len(list.Content))
	for i, entry := range list.Content {
		if entry.Kind == yaml.AliasNode && entry.Alias != nil {
			entry = entry.Alias
		}
		params := mapValue(entry, "litellm_params")
		if params != nil && params.Kind == yaml.AliasNode && params.Alias != nil {
			params = params.Alias
		}
		if m := mapValue(params, "model"); m != nil {
			out[i].model = m.Value
		}
		if b := mapValue(params, "api_base"); b != nil {
			out[i].apiBase = b.Value
		}
	}
	return out
}

// hashID is a stable id from the params that identify a deployment. The
// key is not part of it, so ids do not change when keys rotate.
func hashID(modelName string, id identity) string {
	h := sha256.Sum256([]byte(modelName + "\x00" + id.model + "\x00" + id.apiBase))
	return broker.Token(modelName) + "-" + hex.EncodeToString(h[:4])
}

// Duration is a time span written as seconds (30, 0.5) as LiteLLM does, or
// as a Go duration string ("30s", "500ms").
type Duration time.Duration

// D returns d as a time.Duration; nil is 0.
func (d *Duration) D() time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

// UnmarshalYAML accepts a number of seconds or a duration string. The
// value is not repeated in errors: it may have come from os.environ/.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if strings.HasPrefix(n.Value, EnvPrefix) {
		return nil // unresolved: only seen when scanning for unknown keys
	}
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
		*d = Duration(f * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		if n.LineComment == envMarker {
			return fmt.Errorf("line %d: the value from the environment is not a duration (want seconds, or like \"30s\")", n.Line)
		}
		return fmt.Errorf("line %d: %q is not a duration (want seconds, or like \"30s\")", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// NewDeployment returns a deployment built from parameters rather than a
// file (the worker command's flags), with its id set: id, or the stable
// hash. Values of the form os.environ/NAME are resolved with lookup.
func NewDeployment(modelName, id string, p LitellmParams, lookup func(string) (string, bool)) Deployment {
	d := Deployment{ModelName: modelName, LitellmParams: p, ModelInfo: ModelInfo{ID: id}}
	d.ID = id
	if d.ID == "" {
		d.ID = hashID(modelName, identity{p.Model, p.APIBase})
	}
	lp := &d.LitellmParams
	for _, f := range []struct {
		key string
		v   *string
	}{{"model", &lp.Model}, {"api_base", &lp.APIBase}, {"api_key", &lp.APIKey}, {"api_version", &lp.APIVersion}} {
		if name, ok := strings.CutPrefix(*f.v, EnvPrefix); ok {
			v, found := lookup(name)
			if !found && d.envErr == nil {
				d.envErr = fmt.Errorf("environment variable %s is not set (litellm_params.%s of %s)", name, f.key, modelName)
			}
			*f.v = v
		}
	}
	return d
}

// inherit sets *dst to src when dst is unset.
func inherit[T any](dst **T, src *T) {
	if *dst == nil {
		*dst = src
	}
}

// inheritList sets *dst to src when dst is unset (nil; an empty list set
// in the file counts as set).
func inheritList[T any](dst *[]T, src []T) {
	if *dst == nil {
		*dst = src
	}
}
