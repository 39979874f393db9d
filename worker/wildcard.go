package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// A wildcard deployment is LiteLLM's pattern routing: model_name
// "openai/*" with litellm_params.model "openai/*" serves every name the
// pattern matches, calling the provider with the model the job asked for
// ("openai/gpt-4o-mini" → model "gpt-4o-mini"). The dispatcher matches
// the name and tells the worker in the internal header
// Llmq-Requested-Model (docs/protocol.md §2.1); the worker fills the
// litellm_params.model's '*'s with what the model_name's '*'s matched, as
// LiteLLM does, and calls an adapter built for that model.

// maxWildcardModels bounds the adapters a wildcard deployment keeps, one
// per model asked for: past it the oldest is dropped (and built again
// when asked for).
const maxWildcardModels = 64

// fromWildcard builds the worker Config of a deployment whose
// litellm_params.model holds a '*'. Its adapter, concurrency, time-outs
// and prices are those of the model with its '*'s filled in (so that a
// missing api_base or key is found at start); a bare "*" names its
// provider only with each job.
func fromWildcard(d *config.Deployment, rs *config.RouterSettings) (Config, error) {
	target := d.LitellmParams.Model
	switch n, m := strings.Count(target, "*"), strings.Count(d.ModelName, "*"); {
	case m == 0:
		return Config{}, fmt.Errorf("deployment %s: litellm_params.model %q has a * but model_name %q has none: the * is filled with what a wildcard model_name matched", d, target, d.ModelName)
	case n > m:
		return Config{}, fmt.Errorf("deployment %s: litellm_params.model %q has more * than model_name %q: a * is filled with what one of the model_name's matched", d, target, d.ModelName)
	}
	sample := *d
	sample.LitellmParams.Model = strings.ReplaceAll(target, "*", "x")
	_, _, _, err := ParseModel(sample.LitellmParams.Model)
	anyProvider := err != nil
	if anyProvider {
		// "*", "*-chat", ...: the provider comes with the job. The
		// settings below do not depend on it.
		sample.LitellmParams.Model = "openai/x"
		sample.LitellmParams.APIBase = "http://localhost/v1"
	}
	cfg, err := FromDeployment(&sample, rs)
	if err != nil {
		// Name the deployment as written, not the sample.
		if inner := errors.Unwrap(err); inner != nil {
			return Config{}, fmt.Errorf("deployment %s: %w", d, inner)
		}
		return Config{}, errors.New(strings.Replace(err.Error(), sample.String(), d.String(), 1))
	}
	_, cfg.Model, _, _ = ParseModel(target)
	if anyProvider {
		cfg.ProviderName, cfg.Model, cfg.Host = "any", target, hostOf(d.LitellmParams.APIBase)
		if d.LitellmParams.MaxParallelRequests <= 0 {
			cfg.Concurrency = DefaultCloudConcurrency
		}
	}
	cfg.Provider = &wildcard{
		group:  broker.CompilePattern(d.ModelName),
		target: target,
		build: func(model string) (Config, error) {
			p := d.LitellmParams
			p.Model = model
			// A bare "*" learns its provider only now: read the
			// provider's usual variables, as LiteLLM does.
			nd := config.NewDeployment(d.ModelName, d.ID, p, os.LookupEnv)
			return FromDeployment(&nd, rs)
		},
		cache: map[string]*wildModel{},
	}
	return cfg, nil
}

// wildcard is the provider of a wildcard deployment: it calls, for each
// job, the adapter of the model the job asked for (see bind).
type wildcard struct {
	group  broker.Pattern
	target string
	build  func(model string) (Config, error)

	mu    sync.Mutex
	cache map[string]*wildModel
	order []string // cache keys, oldest first
}

// wildModel is one model a wildcard deployment calls: its adapter, or
// why it cannot.
type wildModel struct {
	prov           provider.Provider
	streamer       provider.Streamer
	provName, name string
	err            *schema.Error
}

type wildKey struct{}

// bindModel hands the model a job asked for (Llmq-Requested-Model) to a
// wildcard deployment's provider, through ctx, and reports it in the
// routing block. Other deployments ignore the header: only a wildcard
// deployment lets a job choose what it calls.
func (w *Worker) bindModel(ctx context.Context, m *nats.Msg, routing *schema.Routing) (context.Context, *schema.Error) {
	wc, ok := w.cfg.Provider.(*wildcard)
	if !ok {
		return ctx, nil
	}
	var requested string
	if m.Header != nil {
		requested = m.Header.Get(schema.HeaderRequestedModel)
	}
	wm, e := wc.model(requested)
	if e != nil {
		return ctx, e
	}
	routing.Provider, routing.Model = wm.provName, wm.name
	return context.WithValue(ctx, wildKey{}, wm), nil
}

// model returns what a job asking for requested calls.
func (wc *wildcard) model(requested string) (*wildModel, *schema.Error) {
	switch {
	case requested == "":
		return nil, schema.Errorf(schema.CodeBadRequest, "the wildcard model group %q serves the model a job asks for: send the job through a dispatcher, which names it (header %s)", wc.group.Name, schema.HeaderRequestedModel)
	case !broker.ValidModel(requested):
		return nil, schema.Errorf(schema.CodeBadRequest, "model %.64q is not a valid model name", requested)
	}
	caps, ok := wc.group.Match(requested)
	if !ok {
		return nil, schema.Errorf(schema.CodeUnknownTier, "model %q does not match the wildcard model group %q", requested, wc.group.Name)
	}
	model := fill(wc.target, caps, requested)
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if wm := wc.cache[model]; wm != nil {
		return wm, wm.err
	}
	wm := &wildModel{}
	if cfg, err := wc.build(model); err != nil {
		msg := err.Error()
		var se *schema.Error
		if errors.As(err, &se) {
			msg = strings.Replace(msg, se.Error(), se.Message, 1)
		}
		wm.err = schema.Errorf(schema.CodeBadRequest, "model %q (for %q): %s", model, requested, msg)
	} else {
		wm.prov, wm.provName, wm.name = cfg.Provider, cfg.ProviderName, cfg.Model
		wm.streamer, _ = cfg.Provider.(provider.Streamer)
	}
	if len(wc.order) >= maxWildcardModels {
		delete(wc.cache, wc.order[0])
		wc.order = wc.order[1:]
	}
	wc.cache[model] = wm
	wc.order = append(wc.order, model)
	return wm, wm.err
}

// fill makes the model to call from the litellm_params.model target and
// what the model_name's '*'s matched, as LiteLLM's router does: each '*'
// of target takes the next match in turn; when there are more matches
// than '*'s, the model is the name asked for as it is.
func fill(target string, caps []string, requested string) string {
	if len(caps) > strings.Count(target, "*") {
		return requested
	}
	for _, c := range caps {
		target = strings.Replace(target, "*", c, 1)
	}
	return target
}

func (wc *wildcard) bound(ctx context.Context) (*wildModel, error) {
	wm, _ := ctx.Value(wildKey{}).(*wildModel)
	if wm == nil || wm.prov == nil {
		return nil, schema.NewError(schema.CodeInternal, "wildcard deployment called without a model")
	}
	return wm, nil
}

// Complete calls the adapter of the job's model.
func (wc *wildcard) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	wm, err := wc.bound(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := wm.prov.Complete(ctx, req)
	return resp, wm.asked(err)
}

// Stream streams from the adapter of the job's model (or completes and
// emits the whole text, for an adapter that cannot stream).
func (wc *wildcard) Stream(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
	wm, err := wc.bound(ctx)
	if err != nil {
		return nil, err
	}
	if wm.streamer != nil {
		resp, err := wm.streamer.Stream(ctx, req, emit)
		return resp, wm.asked(err)
	}
	resp, err := wm.prov.Complete(ctx, req)
	if err == nil {
		err = provider.Replay(resp, emit)
	}
	return resp, wm.asked(err)
}

// asked retypes a provider's "no such model" (not_found: for an ordinary
// deployment, the operator's mistake) as unknown_tier: here the model is
// the one the job asked for, so the job is at fault — no cooldown, and
// the gateway answers 404 model_not_found.
func (wm *wildModel) asked(err error) error {
	if schema.CodeOf(err) != schema.CodeNotFound {
		return err
	}
	return schema.Errorf(schema.CodeUnknownTier, "model %q: %s", wm.name, schema.AsError(err).Message)
}
