package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"
)

// Config is a whole configuration file.
type Config struct {
	ModelList            []Deployment      `yaml:"model_list"`
	RouterSettings       RouterSettings    `yaml:"router_settings"`
	LitellmSettings      LitellmSettings   `yaml:"litellm_settings"`
	GeneralSettings      GeneralSettings   `yaml:"general_settings"`
	EnvironmentVariables map[string]string `yaml:"environment_variables"`
	Settings             Settings          `yaml:"llmq_settings"`

	// Warnings lists what Load noticed but did not reject, each as
	// "line N: path: message": unknown keys, keys llmq does not act on,
	// duplicate keys, fallbacks to no model_name. Check returns them with
	// their line and path as Diagnostics.
	Warnings []string `yaml:"-"`
}

// Deployment is one model_list entry: a provider deployment serving a tier.
type Deployment struct {
	// ModelName is the tier (LiteLLM's model group) the deployment serves.
	ModelName     string        `yaml:"model_name"`
	LitellmParams LitellmParams `yaml:"litellm_params"`
	ModelInfo     ModelInfo     `yaml:"model_info"`
	// RPM and TPM may sit beside litellm_params, as LiteLLM allows; Parse
	// copies them into LitellmParams when those are unset.
	RPM int `yaml:"rpm"`
	TPM int `yaml:"tpm"`

	// ID is model_info.id, or a hash of the model_name and the
	// litellm_params as written (see id.go): stable across environments.
	ID string `yaml:"-"`
	// KeyEnv, BaseEnv and VersionEnv name the variable api_key, api_base
	// and api_version came from when the deployment does not set them and
	// the provider's usual one is set (ProviderEnv); empty otherwise.
	KeyEnv, BaseEnv, VersionEnv string `yaml:"-"`
	// MaxImageBytes is llmq_settings.max_image_bytes (0: the default),
	// copied here so that a deployment carries what its worker needs.
	MaxImageBytes int64 `yaml:"-"`

	index, line int
	// problems keep the deployment from running: os.environ/ variables
	// that are not set.
	problems []Diagnostic
}

// Err reports the first problem that keeps the deployment from running:
// an os.environ/ variable that is not set. It names the variable and where
// the file uses it; never its value.
func (d *Deployment) Err() error {
	if len(d.problems) == 0 {
		return nil
	}
	p := d.problems[0]
	if p.Line > 0 {
		return fmt.Errorf("%s (line %d): %s", p.Path, p.Line, p.Msg)
	}
	return fmt.Errorf("%s: %s", p.Path, p.Msg)
}

// Problems lists everything that keeps the deployment from running, with
// lines and paths (Err is the first).
func (d *Deployment) Problems() []Diagnostic { return slices.Clone(d.problems) }

// Line is the line of the deployment's model_list entry (0 when it was not
// read from a file).
func (d *Deployment) Line() int { return d.line }

// Index is the deployment's position in model_list.
func (d *Deployment) Index() int { return d.index }

// KeyVars are the variables LiteLLM reads for this deployment's provider
// when it has no api_key (ProviderEnv), for messages.
func (d *Deployment) KeyVars() []string {
	return ProviderEnv[ProviderPrefix(d.LitellmParams.Model)].Key
}

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
	// AzureADToken is a Microsoft Entra ID token for azure/ deployments,
	// sent instead of an api-key when api_key is not set.
	AzureADToken string `yaml:"azure_ad_token"`
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
	// NumRetries, when set, replaces router_settings.num_retries for jobs
	// this deployment failed (LiteLLM takes the count from the failing
	// deployment); MaxRetries is how many times the worker itself calls
	// the provider again on a retryable failure before it reports one (the
	// provider client's max_retries). CooldownTime replaces
	// router_settings.cooldown_time for this deployment.
	NumRetries   *int      `yaml:"num_retries"`
	MaxRetries   *int      `yaml:"max_retries"`
	CooldownTime *Duration `yaml:"cooldown_time"`
	// DropParams: true drops a request parameter the provider cannot
	// honour (logged at debug) instead of refusing the job with a
	// bad_request naming it (LiteLLM's drop_params). Unset:
	// litellm_settings.drop_params, else false.
	DropParams *bool `yaml:"drop_params"`
	// KeepAlive is how long an Ollama host keeps the model loaded after a
	// call ("5m", "1h", -1 for ever, 0 to unload at once; a bare number
	// is seconds), sent with every call as LiteLLM passes it. Empty: the
	// host's OLLAMA_KEEP_ALIVE.
	KeepAlive string `yaml:"keep_alive"`
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
	// InputCostPerToken and OutputCostPerToken price calls when
	// litellm_params does not (Parse copies them there).
	InputCostPerToken  float64 `yaml:"input_cost_per_token"`
	OutputCostPerToken float64 `yaml:"output_cost_per_token"`
	// RPM and TPM are usage limits here too, as LiteLLM reads them (see
	// Deployment.Limits).
	RPM int `yaml:"rpm"`
	TPM int `yaml:"tpm"`
	// MaxInputTokens is the deployment's context window for pre-call
	// checks (router_settings.enable_pre_call_checks); without it llmq's
	// table of common models applies (ContextWindow), looked up by
	// BaseModel when set (LiteLLM's model_info.base_model, for Azure
	// deployment names), else by litellm_params.model.
	MaxInputTokens int    `yaml:"max_input_tokens"`
	BaseModel      string `yaml:"base_model"`
	// Mode is LiteLLM's endpoint of the deployment: chat (the default),
	// completion, embedding, image_generation, ... llmq serves chat
	// completions and, where the adapter embeds, embeddings (a deployment
	// of mode embedding serves embedding jobs only); a deployment of
	// another mode cannot be served (the worker's Unservable says why).
	Mode string `yaml:"mode"`
	// Other model_info keys (LiteLLM has many) are kept, not interpreted,
	// and warned about.
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
	// ShortestExpectedDelay is llmq's own: each job goes where it is
	// expected to finish first — the deployment's jobs (queued, in flight,
	// and this one) over its slots, times its recent latency per job —
	// and waits for a busy fast deployment rather than take a free slow
	// one when that finishes sooner.
	ShortestExpectedDelay = "shortest-expected-delay"
)

// Strategies lists the routing strategies llmq implements.
var Strategies = []string{SimpleShuffle, LeastBusy, LatencyBased, WeightedShuffle, UsageBased, CostBased, ShortestExpectedDelay}

// RouterSettings are LiteLLM's router_settings that llmq honours.
type RouterSettings struct {
	// RoutingStrategy: simple-shuffle (default), least-busy, latency-based
	// (LiteLLM: latency-based-routing), weighted-shuffle, usage-based
	// (usage-based-routing, usage-based-routing-v2), cost-based
	// (cost-based-routing), shortest-expected-delay (llmq's own).
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
	// ModelGroupAlias maps names jobs may ask for to model groups (see
	// Alias).
	ModelGroupAlias map[string]Alias `yaml:"model_group_alias"`
	// EnableTagFiltering turns tag routing on; TagFilteringMatchAny (default
	// true) takes a deployment with any of the job's tags, false one with
	// all of them.
	EnableTagFiltering   bool  `yaml:"enable_tag_filtering"`
	TagFilteringMatchAny *bool `yaml:"tag_filtering_match_any"`
	// ConversationAffinity (llmq's own key, llmq_conversation_affinity)
	// sends the jobs of one conversation back to the host that served its
	// earlier turns while that host has room, so its prompt cache is
	// reused (see docs/protocol.md, routing).
	ConversationAffinity bool `yaml:"llmq_conversation_affinity"`
	// DefaultMaxParallelRequests is the concurrency of deployments that set
	// no max_parallel_requests.
	DefaultMaxParallelRequests int `yaml:"default_max_parallel_requests"`
	// LiteLLM settings that only matter to a LiteLLM proxy; accepted so
	// that existing files load, and otherwise unused.
	RedisHost     string `yaml:"redis_host"`
	RedisPort     any    `yaml:"redis_port"`
	RedisPassword string `yaml:"redis_password"`
}

// StrategyArgs are routing_strategy_args.
type StrategyArgs struct {
	// TTL: a worker's latency samples older than this are forgotten.
	// Default 1 h (LiteLLM's).
	TTL Duration `yaml:"ttl"`
	// MaxLatencyListSize is how many recent calls a worker's latency
	// figures come from. Default 64 (LiteLLM's is 10).
	MaxLatencyListSize int `yaml:"max_latency_list_size"`
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
	// DropParams is the drop_params of deployments that set none.
	DropParams *bool          `yaml:"drop_params"`
	SetVerbose bool           `yaml:"set_verbose"`
	Other      map[string]any `yaml:",inline"`
}

// GeneralSettings are the general_settings llmq reads.
type GeneralSettings struct {
	// MasterKey, when set, is the bearer key the HTTP gateway requires.
	MasterKey string         `yaml:"master_key"`
	Other     map[string]any `yaml:",inline"`

	masterKeyErr error
}

// MasterKeyErr reports a master_key written as os.environ/NAME with NAME
// unset. Only the gateway uses the key, so only the gateway fails for it
// (it must not serve without the key the file asks for); for the other
// processes it is a warning.
func (g *GeneralSettings) MasterKeyErr() error { return g.masterKeyErr }

// Settings are llmq's own settings (llmq_settings).
type Settings struct {
	// Prefix of every subject. Default "llm".
	Prefix string `yaml:"prefix"`
	// HeartbeatInterval of workers. Default 1 s.
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// MaxQueue is how many jobs a dispatcher holds per tier waiting for a
	// free worker. Default 10000.
	MaxQueue int `yaml:"max_queue"`
	// MaxImageBytes caps one image a job carries inline (a data: URI,
	// decoded); workers refuse a bigger one with a bad_request naming the
	// message and part, and adapters fetch no bigger one from a URL.
	// Default 20 MiB (OpenAI's limit per image).
	MaxImageBytes int64 `yaml:"max_image_bytes"`
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
// references (os.LookupEnv in Load). It fails with Errors, every error of
// the file at once. A variable that is not set fails it only where llmq
// uses the value outside deployments: inside a deployment it is that
// deployment's Err (so a dispatcher need not hold the keys of workers it
// never runs), in general_settings.master_key it is MasterKeyErr (only the
// gateway uses it), and in a key llmq ignores it is part of that key's
// warning.
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	cfg, ds := Check(data, lookup)
	if errs := diags(ds).errors(); len(errs) > 0 || cfg == nil {
		return nil, errs
	}
	return cfg, nil
}

// Check reads a configuration as Parse does and returns everything it
// found, errors and warnings, sorted by line, with the configuration as far
// as it could be read (nil only when the YAML itself cannot be read). When
// there are errors, use the configuration for reporting only (`llmq config
// check` still says which deployments could be served). What keeps a
// single deployment from running (Deployment.Problems) and an unset
// master_key (MasterKeyErr) are not errors of the file: which process they
// stop is the caller's to say.
func Check(data []byte, lookup func(string) (string, bool)) (*Config, []Diagnostic) {
	var ds diags
	cfg := check(data, lookup, &ds)
	SortDiagnostics(ds)
	if cfg != nil {
		for _, d := range ds {
			if d.Severity == Warning {
				cfg.Warnings = append(cfg.Warnings, d.String())
			}
		}
	}
	return cfg, ds
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError returns the line and message of a YAML syntax error. yaml.v3
// reports the line where the enclosing block or flow started, counted from
// 0 for parser errors (so "line 1" for a bad key on line 5); yaml.v2, the
// same scanner and parser, reports where the problem was found, counted
// from 0 for parser errors and from 1 for scanner errors. So the line comes
// from v2, corrected; except for an unexpected end of stream, where v3's
// line (where the unclosed value started) is the useful one.
func syntaxError(data []byte, err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var x any
	if err2 := yaml2.Unmarshal(data, &x); err2 != nil && !strings.Contains(msg, "end of stream") {
		if m := yamlLineRE.FindStringSubmatch(err2.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			if strings.HasPrefix(m[2], "did not find expected ") && !strings.HasPrefix(m[2], "did not find expected comment") &&
				!strings.HasPrefix(m[2], "did not find expected hex") {
				line++ // a parser error: 0-based
			}
			return line, m[2]
		}
	}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, msg
}

func check(data []byte, lookup func(string) (string, bool), ds *diags) *Config {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		line, msg := syntaxError(data, err)
		ds.errorf(line, "", "YAML syntax: %s", msg)
		return nil
	}
	if len(root.Content) == 0 {
		ds.errorf(0, "", "empty configuration: want a model_list")
		return nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		ds.errorf(doc.Line, "", "the top level must be a mapping (model_list:, router_settings:, ...)")
		return nil
	}
	dedupe(doc, "", ds, map[*yaml.Node]bool{})
	envVars := environmentVariables(doc)
	lookupAll := func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		v, ok := envVars[name]
		return v, ok
	}
	// Ids come from the file as written, before os.environ/ is resolved.
	entries := modelListEntries(doc)
	ids := make([]string, len(entries))
	for i, e := range entries {
		var name string
		if n := mapValue(e, "model_name"); n != nil {
			name = n.Value
		}
		ids[i] = hashID(name, deref(mapValue(e, "litellm_params")))
	}
	w := &walker{
		lookup: lookupAll, ds: ds,
		lines: map[int]string{}, scalars: map[int][]scalarAt{}, ignoredLines: map[int]bool{}, envLines: map[int]string{},
		deps: map[int][]Diagnostic{},
	}
	w.walk(doc, reflect.TypeFor[Config](), "", "", walkCtx{dep: -1})
	unset := map[*yaml.Node]bool{}
	for _, n := range w.unset {
		n.Value, n.Tag, n.Style = "", "!!null", 0
		unset[n] = true
	}
	cfg := &Config{}
	if err := doc.Decode(cfg); err != nil {
		w.decodeErrors(err)
	}
	if w.masterKey != nil {
		ds.add(w.masterKey.Severity, w.masterKey.Line, w.masterKey.Path, "%s", w.masterKey.Msg)
		cfg.GeneralSettings.masterKeyErr = fmt.Errorf("%s (line %d): %s", w.masterKey.Path, w.masterKey.Line,
			strings.TrimSuffix(w.masterKey.Msg, masterKeyNote))
	}
	f := finisher{c: cfg, doc: doc, entries: entries, ids: ids, w: w, ds: ds, lookup: lookupAll, unset: unset}
	f.finish()
	return cfg
}

// decodeErrors turns the decoder's type errors into diagnostics that name
// the path and never quote a value from the environment (nor, for
// literals, more than the decoder's excerpt would).
func (w *walker) decodeErrors(err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		w.ds.errorf(0, "", "%v", err)
		return
	}
	for _, msg := range te.Errors {
		line := 0
		if m := lineMsgRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		path, ignored := w.lines[line], w.ignoredLines[line]
		if rest, ok := strings.CutPrefix(msg, "cannot unmarshal "); ok {
			tag, _, _ := strings.Cut(rest, " ")
			path, ignored = w.pathOf(line, rest)
			want := rest
			if i := strings.LastIndex(rest, " into "); i >= 0 {
				want = rest[i+len(" into "):]
			}
			if name := w.envLines[line]; name != "" {
				msg = fmt.Sprintf("the value of %s%s is not %s", EnvPrefix, name, typeName(want))
			} else {
				msg = fmt.Sprintf("want %s, not %s", typeName(want), tagName(tag))
			}
		}
		sev := Error
		if ignored {
			sev = Warning
			msg = "ignored key: " + msg
		}
		w.ds.add(sev, line, path, "%s", msg)
	}
}

// pathOf finds which value of a line a type error is about, from the
// excerpt of the value the decoder quotes ("!!str `lots` into int",
// "!!str `sk-1234...` into int"); the line's first path otherwise.
func (w *walker) pathOf(line int, rest string) (path string, ignored bool) {
	if a := strings.IndexByte(rest, '`'); a >= 0 {
		if b := strings.LastIndexByte(rest, '`'); b > a {
			excerpt := strings.TrimSuffix(rest[a+1:b], "...")
			var found []scalarAt
			for _, s := range w.scalars[line] {
				if s.value == excerpt || strings.HasSuffix(rest[a+1:b], "...") && strings.HasPrefix(s.value, excerpt) {
					found = append(found, s)
				}
			}
			if len(found) == 1 {
				return found[0].path, found[0].ignored
			}
		}
	}
	return w.lines[line], w.ignoredLines[line]
}

var lineMsgRE = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)

func typeName(goType string) string {
	t := strings.TrimLeft(goType, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "config."):
		return "a mapping"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	}
	return t
}

func tagName(tag string) string {
	switch tag {
	case "!!str":
		return "text"
	case "!!int":
		return "a whole number"
	case "!!float":
		return "a number"
	case "!!bool":
		return "true or false"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!null":
		return "null"
	case "!!timestamp":
		return "a date"
	}
	return tag
}

const masterKeyNote = ": the gateway will refuse to start without it; dispatchers and workers do not use it"

func environmentVariables(doc *yaml.Node) map[string]string {
	out := map[string]string{}
	if v := deref(mapValue(doc, "environment_variables")); v != nil && v.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(v.Content); i += 2 {
			if c := deref(v.Content[i+1]); c != nil && c.Kind == yaml.ScalarNode && !isNull(c) {
				out[v.Content[i].Value] = c.Value
			}
		}
	}
	return out
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
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

// keyLine is the line of key in mapping n, else of n, else 0.
func keyLine(n *yaml.Node, key string) int {
	n = deref(n)
	if n == nil {
		return 0
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	return n.Line
}

// deref follows an alias.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// modelListEntries are the model_list entries as written (aliases
// followed; nil for an entry that is not a mapping).
func modelListEntries(doc *yaml.Node) []*yaml.Node {
	list := deref(mapValue(doc, "model_list"))
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]*yaml.Node, len(list.Content))
	for i, e := range list.Content {
		if e = deref(e); e != nil && e.Kind == yaml.MappingNode {
			out[i] = e
		}
	}
	return out
}

// finisher validates, fills defaults and derived values.
type finisher struct {
	c       *Config
	doc     *yaml.Node
	entries []*yaml.Node
	ids     []string
	w       *walker
	ds      *diags
	lookup  func(string) (string, bool)
	unset   map[*yaml.Node]bool
}

func (f *finisher) finish() {
	c, ds := f.c, f.ds
	if len(c.ModelList) == 0 {
		if list := deref(mapValue(f.doc, "model_list")); list == nil || list.Kind == yaml.SequenceNode {
			ds.errorf(keyLine(f.doc, "model_list"), "model_list", "at least one deployment is required")
		}
	}
	seen := map[string]int{}
	for i := range c.ModelList {
		d := &c.ModelList[i]
		var e *yaml.Node
		if i < len(f.entries) {
			e = f.entries[i]
		}
		p := fmt.Sprintf("model_list[%d]", i)
		d.index, d.line, d.problems = i, keyLine(e, "model_name"), f.w.deps[i]
		if e != nil && len(e.Content) > 0 {
			d.line = e.Content[0].Line
		}
		params := deref(mapValue(e, "litellm_params"))
		if d.ModelName == "" {
			ds.errorf(keyLine(e, "model_name"), p+".model_name", "model_name is required: the name clients ask for (LiteLLM's model group)")
		}
		if m := mapValue(params, "model"); d.LitellmParams.Model == "" && !f.unset[deref(m)] {
			ds.errorf(keyLine(params, "model"), p+".litellm_params.model", "litellm_params.model is required for %q: <provider>/<model>, e.g. openai/gpt-4o", d.ModelName)
		}
		lp := &d.LitellmParams
		if lp.RPM == 0 {
			lp.RPM = d.RPM
		}
		if lp.TPM == 0 {
			lp.TPM = d.TPM
		}
		if lp.InputCostPerToken == 0 {
			lp.InputCostPerToken = d.ModelInfo.InputCostPerToken
		}
		if lp.OutputCostPerToken == 0 {
			lp.OutputCostPerToken = d.ModelInfo.OutputCostPerToken
		}
		if lp.KeepAlive != "" && !isOllamaModel(lp.Model) {
			ds.warnf(keyLine(params, "keep_alive"), p+".litellm_params.keep_alive", "ignored: keep_alive is sent to Ollama hosts only (ollama/, ollama_chat/ models)")
		}
		d.ID = d.ModelInfo.ID
		if d.ID == "" && i < len(f.ids) {
			d.ID = f.ids[i]
		}
		if j, dup := seen[d.ID]; dup && d.ID != "" {
			o := &c.ModelList[j]
			ds.errorf(d.line, p, "same id %q as model_list[%d] (line %d): set model_info.id to tell them apart "+
				"(without it the id is a hash of model_name and litellm_params)", d.ID, j, o.line)
		}
		seen[d.ID] = i
		f.providerDefaults(d, params)
	}
	f.settings()
	f.names()
}

// providerDefaults gives a deployment that does not set api_key, api_base
// or api_version the value of its provider's usual variable, as LiteLLM
// does.
func (f *finisher) providerDefaults(d *Deployment, params *yaml.Node) {
	vars, ok := ProviderEnv[ProviderPrefix(d.LitellmParams.Model)]
	if !ok {
		return
	}
	absent := func(key string) bool {
		n := deref(mapValue(params, key))
		return n == nil || isNull(n) && !f.unset[n]
	}
	lp := &d.LitellmParams
	for _, x := range []struct {
		key   string
		names []string
		v     *string
		from  *string
	}{
		{"api_key", vars.Key, &lp.APIKey, &d.KeyEnv},
		{"api_base", vars.Base, &lp.APIBase, &d.BaseEnv},
		{"api_version", vars.Version, &lp.APIVersion, &d.VersionEnv},
	} {
		if !absent(x.key) {
			continue
		}
		if name, v, ok := firstSet(x.names, f.lookup); ok {
			*x.v, *x.from = v, name
		}
	}
}

// settings merges litellm_settings into router_settings (router_settings
// wins, as in LiteLLM), normalizes the strategy and checks fallbacks.
func (f *finisher) settings() {
	c, ds := f.c, f.ds
	rs, ls := &c.RouterSettings, &c.LitellmSettings
	rsNode, lsNode := deref(mapValue(f.doc, "router_settings")), deref(mapValue(f.doc, "litellm_settings"))
	shadowed := map[string]bool{}
	for _, k := range [][2]string{
		{"num_retries", "num_retries"}, {"request_timeout", "timeout"}, {"max_fallbacks", "max_fallbacks"},
		{"allowed_fails", "allowed_fails"}, {"cooldown_time", "cooldown_time"}, {"fallbacks", "fallbacks"},
		{"context_window_fallbacks", "context_window_fallbacks"}, {"content_policy_fallbacks", "content_policy_fallbacks"},
		{"default_fallbacks", "default_fallbacks"},
	} {
		l, r := mapValue(lsNode, k[0]), mapValue(rsNode, k[1])
		if l != nil && r != nil && !isNull(l) && !isNull(r) {
			shadowed[k[0]] = true
			ds.warnf(keyLine(lsNode, k[0]), "litellm_settings."+k[0], "ignored: router_settings.%s is set and wins (as in LiteLLM)", k[1])
		}
	}
	inherit(&rs.NumRetries, ls.NumRetries)
	inherit(&rs.Timeout, ls.RequestTimeout)
	inherit(&rs.MaxFallbacks, ls.MaxFallbacks)
	inherit(&rs.AllowedFails, ls.AllowedFails)
	inherit(&rs.CooldownTime, ls.CooldownTime)
	inheritList(&rs.Fallbacks, ls.Fallbacks)
	inheritList(&rs.ContextWindowFallbacks, ls.ContextWindowFallbacks)
	inheritList(&rs.ContentPolicyFallbacks, ls.ContentPolicyFallbacks)
	inheritList(&rs.DefaultFallbacks, ls.DefaultFallbacks)
	if n := c.Settings.MaxImageBytes; n < 0 {
		ds.errorf(keyLine(deref(mapValue(f.doc, "llmq_settings")), "max_image_bytes"), "llmq_settings.max_image_bytes", "must be 0 (the default, 20 MiB) or more, got %d", n)
	}
	for i := range c.ModelList {
		c.ModelList[i].MaxImageBytes = max(c.Settings.MaxImageBytes, 0)
	}
	if dp := ls.DropParams; dp != nil {
		for i := range c.ModelList {
			if lp := &c.ModelList[i].LitellmParams; lp.DropParams == nil {
				v := *dp
				lp.DropParams = &v
			}
		}
	}
	if s, err := NormalizeStrategy(rs.RoutingStrategy); err != nil {
		line := keyLine(rsNode, "routing_strategy")
		if name := f.w.envLines[line]; name != "" {
			err = fmt.Errorf("the value of %s%s is not a routing strategy llmq has (%s)", EnvPrefix, name, strings.Join(Strategies, ", "))
		}
		ds.errorf(line, "router_settings.routing_strategy", "%v", err)
	} else {
		rs.RoutingStrategy = s
	}
	// fallbacks: [{"*": [...]}] is LiteLLM's way to write default fallbacks.
	for _, m := range rs.Fallbacks {
		if to, ok := m["*"]; ok && rs.DefaultFallbacks == nil {
			rs.DefaultFallbacks = to
		}
	}
	f.checkRetryPolicy(rsNode)
	f.checkAllowedFailsPolicy(rsNode)
	tiers := c.Tiers()
	for _, sec := range []struct {
		name string
		node *yaml.Node
	}{{"router_settings", rsNode}, {"litellm_settings", lsNode}} {
		for _, key := range []string{"fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "default_fallbacks"} {
			if sec.name == "litellm_settings" && shadowed[key] {
				continue
			}
			f.checkFallbacks(sec.name+"."+key, deref(mapValue(sec.node, key)), key == "fallbacks", tiers)
		}
	}
}

// RetryPolicyKeys are the router_settings.retry_policy keys llmq reads
// (LiteLLM's RetryPolicy; dispatcher.RetryPolicyFromLiteLLM maps them).
var RetryPolicyKeys = []string{
	"BadRequestErrorRetries", "AuthenticationErrorRetries", "TimeoutErrorRetries", "RateLimitErrorRetries",
	"ContentPolicyViolationErrorRetries", "InternalServerErrorRetries",
}

// checkRetryPolicy warns about retry_policy keys nobody reads.
func (f *finisher) checkRetryPolicy(rs *yaml.Node) {
	rp := deref(mapValue(rs, "retry_policy"))
	if rp == nil || rp.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(rp.Content); i += 2 {
		if k := rp.Content[i]; !slices.Contains(RetryPolicyKeys, k.Value) {
			f.ds.warnf(k.Line, "router_settings.retry_policy."+k.Value, "unknown key, ignored (LiteLLM's retry_policy has %s)",
				strings.Join(RetryPolicyKeys, ", "))
		}
	}
}

// checkFallbacks warns about fallbacks from or to names that are no
// model_name, at their lines.
func (f *finisher) checkFallbacks(path string, n *yaml.Node, star bool, tiers map[string]bool) {
	if n == nil || n.Kind != yaml.SequenceNode {
		return
	}
	target := func(t *yaml.Node, p, from string) {
		if t = deref(t); t == nil || t.Kind != yaml.ScalarNode || tiers[t.Value] {
			return
		}
		if from == "" {
			f.ds.warnf(t.Line, p, "%q is not a model_name of model_list", t.Value)
			return
		}
		f.ds.warnf(t.Line, p, "%q (fallback of %q) is not a model_name of model_list", t.Value, from)
	}
	for i, item := range n.Content {
		item = deref(item)
		p := fmt.Sprintf("%s[%d]", path, i)
		if item == nil || item.Kind != yaml.MappingNode {
			target(item, p, "")
			continue
		}
		for j := 0; j+1 < len(item.Content); j += 2 {
			from := item.Content[j]
			if !(star && from.Value == "*") && !tiers[from.Value] {
				f.ds.warnf(from.Line, p, "%q is not a model_name of model_list", from.Value)
			}
			if to := deref(item.Content[j+1]); to != nil && to.Kind == yaml.SequenceNode {
				for _, t := range to.Content {
					target(t, p, from.Value)
				}
			} else {
				target(to, p, from.Value)
			}
		}
	}
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
	case ShortestExpectedDelay:
		return ShortestExpectedDelay, nil
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

// UnmarshalYAML accepts a number of seconds or a duration string. A value
// that came from os.environ/ is not repeated in errors, nor is a long
// literal (it could be a key on the wrong line). Errors are type errors,
// so that decoding goes on and reports the others too.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Tag == "!!null" || strings.HasPrefix(n.Value, EnvPrefix) {
		return nil // unresolved: reported where it was looked up
	}
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
		*d = Duration(f * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		what := "the value"
		switch {
		case n.LineComment == envMarker:
			what = "the value from the environment"
		case len(n.Value) <= 16:
			what = strconv.Quote(n.Value)
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s is not a duration (want seconds, or like \"30s\")", n.Line, what)}}
	}
	*d = Duration(v)
	return nil
}

// NewDeployment returns a deployment built from parameters rather than a
// file (the worker command's flags), with its id set: id, or the hash of
// model_name and the parameters as given (the id a file deployment with
// the same keys and values gets). Values of the form os.environ/NAME are
// resolved with lookup, and a missing api_key, api_base or api_version is
// read from the provider's usual variable (ProviderEnv), as in Parse.
func NewDeployment(modelName, id string, p LitellmParams, lookup func(string) (string, bool)) Deployment {
	d := Deployment{ModelName: modelName, LitellmParams: p, ModelInfo: ModelInfo{ID: id}}
	d.ID = id
	if d.ID == "" {
		d.ID = hashID(modelName, paramsNode(p))
	}
	lp := &d.LitellmParams
	for _, f := range []struct {
		key string
		v   *string
	}{{"model", &lp.Model}, {"api_base", &lp.APIBase}, {"api_key", &lp.APIKey}, {"api_version", &lp.APIVersion}} {
		if name, ok := strings.CutPrefix(*f.v, EnvPrefix); ok {
			v, found := lookup(name)
			if !found {
				d.problems = append(d.problems, Diagnostic{Severity: Error, Path: "litellm_params." + f.key,
					Msg: fmt.Sprintf("environment variable %s is not set (%s%s) for deployment %s", name, EnvPrefix, name, modelName)})
			}
			*f.v = v
		}
	}
	vars := ProviderEnv[ProviderPrefix(lp.Model)]
	for _, x := range []struct {
		given   string
		names   []string
		v, from *string
	}{
		{p.APIKey, vars.Key, &lp.APIKey, &d.KeyEnv},
		{p.APIBase, vars.Base, &lp.APIBase, &d.BaseEnv},
		{p.APIVersion, vars.Version, &lp.APIVersion, &d.VersionEnv},
	} {
		if x.given != "" {
			continue
		}
		if name, v, ok := firstSet(x.names, lookup); ok {
			*x.v, *x.from = v, name
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
