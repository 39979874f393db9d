package worker

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/config/family"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/anthropic"
	"github.com/llmq/llmq/worker/provider/azure"
	"github.com/llmq/llmq/worker/provider/cohere"
	"github.com/llmq/llmq/worker/provider/gemini"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/sim"
)

// Provider names, as heartbeats and replies report them: the adapter's
// (family.Adapter). Every OpenAI-compatible family reports "openai".
const (
	ProviderOllama    = string(family.Ollama)
	ProviderGemini    = string(family.Gemini)
	ProviderAnthropic = string(family.Anthropic)
	ProviderOpenAI    = string(family.OpenAI)
	ProviderAzure     = string(family.Azure)
	ProviderCohere    = string(family.Cohere)
	ProviderSim       = string(family.Sim)
)

// ParseModel splits a LiteLLM model string into llmq's provider name and
// the provider's model name: "ollama/qwen2.5-coder:14b" → ("ollama",
// "qwen2.5-coder:14b", "ollama"). Bare "claude-…" names are Anthropic's and
// bare "gpt-…"/"o1…" names OpenAI's, as LiteLLM reads them. The prefixes
// are package family's table. A prefix llmq knows but does not serve yet
// (bedrock, vertex_ai, …) is an error wrapping family.ErrUnsupported; any
// other unknown prefix an error listing the known ones.
func ParseModel(model string) (providerName, name, prefix string, err error) {
	prefix, name, ok := family.Split(model)
	if !ok {
		return "", "", "", fmt.Errorf("model %q names no provider: write <provider>/<model>, e.g. ollama/%s", model, model)
	}
	if name == "" {
		return "", "", "", fmt.Errorf("model %q has no model name after %q", model, prefix+"/")
	}
	f, ok := family.Lookup(prefix)
	if !ok {
		if u, known := family.LookupUnsupported(prefix); known {
			return "", "", prefix, &family.UnsupportedError{Model: model, Unsupported: u}
		}
		return "", "", "", fmt.Errorf("model %q: unknown provider prefix %q%s (llmq serves %s)", model, prefix,
			didYouMean(prefix, name), strings.Join(family.Prefixes(), ", "))
	}
	return string(f.Adapter), name, prefix, nil
}

// didYouMean suggests the known prefix an unknown one is closest to
// ("mistralai" → "mistral"), and where an org/model id from a model hub
// goes, or "".
func didYouMean(prefix, name string) string {
	best, bestDist := "", 3 // farther than two edits is no suggestion
	for _, p := range family.Prefixes() {
		d := editDistance(strings.ToLower(prefix), p)
		if strings.HasPrefix(strings.ToLower(prefix), p) || strings.HasPrefix(p, strings.ToLower(prefix)) {
			d = min(d, 2)
		}
		if d < bestDist {
			best, bestDist = p, d
		}
	}
	var hint []string
	if best != "" {
		hint = append(hint, fmt.Sprintf("did you mean %q?", best+"/"+name))
	}
	// "mistralai/mistral-7b-instruct" is how OpenRouter and Hugging Face
	// name models.
	hint = append(hint, fmt.Sprintf("an OpenRouter or Hugging Face id goes after its provider: %q or %q",
		"openrouter/"+prefix+"/"+name, "huggingface/"+prefix+"/"+name))
	return ": " + strings.Join(hint, "; ")
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Unservable returns the error of a deployment of an endpoint llmq does
// not serve: model_info.mode image_generation and LiteLLM's other
// non-chat modes, or, with no mode written, an image generation
// model by its name (dall-e-*, gpt-image-*, imagen-*; the name is the
// model_name when the model has none, as in LiteLLM's `azure/` for Azure's
// dall-e). The error wraps family.ErrUnsupported. nil otherwise.
//
// A deployment of mode embedding is served when its provider's adapter
// embeds (family.Adapter.Embeds: ollama, gemini, the OpenAI-compatible
// families, azure, sim); for the others (anthropic, cohere) it is an
// error saying so.
func Unservable(d *config.Deployment) error {
	model := d.LitellmParams.Model
	if d.ModelInfo.Mode == ModeEmbedding {
		if a, ok := adapterOf(model); ok && !a.Embeds() {
			return &family.ModeError{Model: model, Mode: ModeEmbedding,
				Why: "llmq serves embeddings on " + family.Embedders() + " deployments, not on " + string(a) + " ones"}
		}
		return nil
	}
	if why, ok := family.UnservedMode(d.ModelInfo.Mode); ok {
		return &family.ModeError{Model: model, Mode: d.ModelInfo.Mode, Why: why}
	}
	if d.ModelInfo.Mode == "" && isImageModel(model, d.ModelName) {
		why, _ := family.UnservedMode("image_generation")
		return &family.ModeError{Model: model, Mode: "image_generation", Inferred: true, Why: why}
	}
	return nil
}

// ModeEmbedding is LiteLLM's model_info.mode of an embedding deployment.
const ModeEmbedding = "embedding"

// adapterOf is the adapter serving model, when its prefix is one llmq
// serves.
func adapterOf(model string) (family.Adapter, bool) {
	prefix, _, ok := family.Split(model)
	if !ok {
		return "", false
	}
	f, ok := family.Lookup(prefix)
	return f.Adapter, ok
}

// isImageModel tells OpenAI's and Google's image generation models by
// name: the model's (its last path segment), or modelName when the model
// names none.
func isImageModel(model, modelName string) bool {
	name := model
	if _, n, ok := family.Split(model); ok {
		name = n
	}
	if name == "" {
		name = modelName
	}
	name = strings.ToLower(name[strings.LastIndex(name, "/")+1:])
	for _, p := range []string{"dall-e", "gpt-image-", "imagen-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Defaults of a deployment's concurrency when max_parallel_requests is
// unset.
const (
	DefaultOllamaConcurrency = 4
	DefaultCloudConcurrency  = 32
)

// FromDeployment builds the worker Config of a config deployment: its
// provider adapter, concurrency, routing hints and time-outs. Conn,
// Subjects, Logger and HeartbeatInterval are the caller's to set. It fails
// for an unset os.environ/ variable, an unknown or unsupported provider
// prefix, a missing key or api_base, or an adapter's own validation;
// errors name the deployment and the variables to set, never a value.
//
// A deployment's api_key, api_base and api_version, when the file leaves
// them out, come from its provider's variables (family.Family's KeyEnv,
// BaseEnv, VersionEnv), which config.Parse reads; an azure/ deployment
// with neither api_key nor azure_ad_token also reads AZURE_AD_TOKEN from
// the process's environment.
func FromDeployment(d *config.Deployment, rs *config.RouterSettings) (Config, error) {
	return fromDeployment(d, rs, deploymentEnv{getenv: os.LookupEnv})
}

// deploymentEnv is what fromDeployment reads besides the deployment: the
// process's environment and, in tests, the HTTP client adapters use.
type deploymentEnv struct {
	getenv func(string) (string, bool)
	http   provider.HTTPDoer
	logger *slog.Logger
}

func fromDeployment(d *config.Deployment, rs *config.RouterSettings, env deploymentEnv) (Config, error) {
	if err := d.Err(); err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	p := d.LitellmParams
	if err := Unservable(d); err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	if strings.Contains(p.Model, "*") {
		return fromWildcard(d, rs) // wildcard.go
	}
	name, model, prefix, err := ParseModel(p.Model)
	if err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	fam, _ := family.Lookup(prefix)
	timeout := p.Timeout.D()
	if timeout <= 0 && rs != nil {
		timeout = rs.Timeout.D()
	}
	streamTimeout := p.StreamTimeout.D()
	if streamTimeout <= 0 && rs != nil {
		streamTimeout = rs.StreamTimeout.D()
	}
	c, err := credentials(d, fam, env.getenv)
	if err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	if b := strings.TrimSpace(c.base); strings.HasPrefix(b, "<") && strings.HasSuffix(b, ">") {
		// A template's "<your-azure-endpoint>": not a secret, so shown.
		return Config{}, fmt.Errorf("deployment %s: api_base %q is a placeholder: write the endpoint's URL there", d, b)
	}
	opts := provider.Options{Model: fam.WireModel(model), APIBase: c.base, APIKey: c.key, Timeout: timeout,
		StreamTimeout: streamTimeout, HTTP: env.http, DropParams: p.DropParams != nil && *p.DropParams,
		MaxImageBytes: d.MaxImageBytes, Logger: env.logger}
	if opts.Logger == nil {
		opts.Logger = slog.Default() // dropped parameters are logged at debug
	}
	rpm, tpm := d.Limits()
	cfg := Config{
		Tier:          d.ModelName,
		Deployment:    d.ID,
		ProviderName:  name,
		Model:         model,
		Host:          hostOf(cmp.Or(c.base, fam.BaseURL)),
		Concurrency:   p.MaxParallelRequests,
		Weight:        shuffleWeight(p),
		Order:         p.Order,
		Timeout:       timeout,
		StreamTimeout: streamTimeout,
		MaxTokens:     p.MaxTokens,
		Embedding:     d.ModelInfo.Mode == ModeEmbedding,
		Limits:        schema.Limits{MaxImageBytes: d.MaxImageBytes},

		InputCostPerToken:  p.InputCostPerToken,
		OutputCostPerToken: p.OutputCostPerToken,
		RPM:                rpm,
		TPM:                tpm,
	}
	if rs != nil {
		cfg.Cooldown = Cooldown{Time: rs.CooldownTime.D(), Disabled: rs.DisableCooldowns}
		if rs.AllowedFails != nil {
			cfg.Cooldown.AllowedFails = *rs.AllowedFails
		}
	}
	if err := routerOptions(&cfg, d, rs); err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	var prov provider.Provider
	switch fam.Adapter {
	case family.Sim:
		s, err := sim.New(sim.Config{
			Name:            model,
			TTFT:            p.Sim.TTFT.D(),
			TokensPerSecond: p.Sim.TokensPerSecond,
			Parallel:        p.Sim.Parallel,
			ErrorRate:       p.Sim.ErrorRate,
			Tokens:          p.Sim.Tokens,
		})
		if err != nil {
			return Config{}, fmt.Errorf("deployment %s: %w", d, err)
		}
		prov = s
		cfg.Host = "simulator"
		if cfg.Concurrency <= 0 {
			cfg.Concurrency = s.Parallel()
		}
	case family.Ollama:
		o, err := ollama.New(opts, ollama.WithKeepAlive(p.KeepAlive))
		if err != nil {
			return Config{}, fmt.Errorf("deployment %s: %w", d, err)
		}
		prov, cfg.Host = o, o.Host()
		if cfg.Concurrency <= 0 {
			cfg.Concurrency = DefaultOllamaConcurrency
		}
	case family.Gemini:
		prov, err = gemini.New(opts)
	case family.Anthropic:
		prov, err = anthropic.New(opts)
	case family.Cohere:
		prov, err = cohere.New(opts)
	case family.Azure:
		prov, err = azure.New(opts, azure.Options{APIVersion: c.version, ADToken: c.token})
	case family.OpenAI:
		if opts.APIBase == "" {
			opts.APIBase = fam.BaseURL
		}
		prov, err = openai.New(opts)
	default:
		err = fmt.Errorf("no adapter for %q", fam.Adapter) // a table entry without a case here
	}
	if err != nil {
		return Config{}, fmt.Errorf("deployment %s: %w", d, err)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultCloudConcurrency
	}
	if _, ok := prov.(provider.Embedder); cfg.Embedding && !ok {
		return Config{}, fmt.Errorf("deployment %s: %w", d, &family.ModeError{Model: p.Model, Mode: ModeEmbedding,
			Why: "llmq's " + string(fam.Adapter) + " adapter does not embed"})
	}
	cfg.Provider = prov
	return cfg, nil
}

// conn is what a deployment connects with.
type conn struct {
	key, base, version, token string
}

// credentials resolves the deployment's key, base, api_version and Azure
// token: litellm_params first, then the family's variables (config.Parse
// has usually read them already; reading them again here covers
// deployments built otherwise). It fails, naming the variables and never a
// value, when the family's public endpoint needs a key and there is none,
// or when the family has no public endpoint and no api_base is set.
func credentials(d *config.Deployment, fam family.Family, getenv func(string) (string, bool)) (conn, error) {
	p := d.LitellmParams
	c := conn{key: p.APIKey, base: p.APIBase, version: p.APIVersion, token: p.AzureADToken}
	if c.token != "" && c.key != "" && d.KeyEnv != "" {
		// azure_ad_token written in the file beats a key from the
		// environment; a key written in the file beats both.
		c.key = ""
	}
	fill := func(v *string, names []string) {
		if *v == "" {
			_, *v, _ = family.FirstSet(names, getenv)
		}
	}
	if c.token == "" {
		fill(&c.key, fam.KeyEnv)
	}
	if c.key == "" {
		fill(&c.token, fam.TokenEnv)
	}
	fill(&c.base, fam.BaseEnv)
	fill(&c.version, fam.VersionEnv)
	if fam.Adapter == family.OpenAI && c.base == "" && fam.BaseURL == "" {
		return conn{}, fmt.Errorf("%s models need litellm_params.api_base (the server's URL ending in /v1)%s",
			fam.Prefix, orVars(fam.BaseEnv))
	}
	if fam.KeyRequired && c.key == "" && c.base == "" {
		return conn{}, fmt.Errorf("%s needs an API key: set litellm_params.api_key%s", fam.Prefix, orVars(fam.KeyEnv))
	}
	return c, nil
}

// orVars is ", or the environment variable A (or B)" for messages.
func orVars(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return ", or the environment variable " + names[0]
	}
	return ", or one of the environment variables " + strings.Join(names, ", ")
}

// shuffleWeight is LiteLLM's simple-shuffle weight: weight, else rpm, else
// tpm, else 0 (uniform).
func shuffleWeight(p config.LitellmParams) float64 {
	switch {
	case p.Weight > 0:
		return p.Weight
	case p.RPM > 0:
		return float64(p.RPM)
	case p.TPM > 0:
		return float64(p.TPM)
	}
	return 0
}

// hostOf returns scheme://host of an api_base, without user info or query
// (where a key could hide).
func hostOf(base string) string {
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
