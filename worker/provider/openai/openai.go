package openai

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// Name is the provider's name in llmq configuration and error messages.
const Name = "openai"

// DefaultAPIBase is the endpoint used when Options.APIBase is empty.
const DefaultAPIBase = "https://api.openai.com/v1"

// officialHost is the host that always needs a key.
const officialHost = "api.openai.com"

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Streamer = (*Provider)(nil)
)

// Provider calls one model of an OpenAI-compatible server. It is safe for
// concurrent use.
type Provider struct {
	opts     provider.Options
	name     string // starts error messages: Name, or an Endpoint's
	endpoint string // {api_base}/chat/completions, or an Endpoint's URL
	// embedEndpoint is {api_base}/embeddings, or an Endpoint's
	// EmbeddingsURL ("" when it has none).
	embedEndpoint string
	header        http.Header // credentials sent with every call
	secrets       []string    // redacted from error messages
}

// New validates o and returns an adapter. Options.Model is required, and
// Options.APIKey is required when the endpoint is OpenAI's own. APIBase
// must be an absolute http(s) URL including the version path; a trailing
// "/" or "/chat/completions" is dropped. Invalid options are a
// bad_request *schema.Error naming the option.
func New(o provider.Options) (*Provider, error) {
	o = o.WithDefaults()
	o.Model = strings.TrimSpace(o.Model)
	if o.Model == "" {
		return nil, schema.NewError(schema.CodeBadRequest, "openai: model is required (Options.Model: the server's model name, e.g. gpt-4o-mini)")
	}
	base := strings.TrimSpace(o.APIBase)
	if base == "" {
		base = DefaultAPIBase
	}
	base = strings.TrimRight(base, "/")
	base = strings.TrimRight(strings.TrimSuffix(base, "/chat/completions"), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, schema.NewError(schema.CodeBadRequest, "openai: api_base (Options.APIBase) must be an absolute http(s) URL including the version path, e.g. http://host:8000/v1")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, schema.Errorf(schema.CodeBadRequest, "openai: api_base (Options.APIBase) %s must not have a query or fragment", u.Redacted())
	}
	if o.APIKey == "" && strings.EqualFold(u.Hostname(), officialHost) {
		return nil, schema.Errorf(schema.CodeBadRequest, "openai: api_key (Options.APIKey) is required for %s; only a self-hosted api_base may go without one", u.Redacted())
	}
	o.APIBase = base
	h := http.Header{}
	if o.APIKey != "" {
		h.Set("Authorization", "Bearer "+o.APIKey)
	}
	return &Provider{opts: o, name: Name, endpoint: base + "/chat/completions", embedEndpoint: base + "/embeddings",
		header: h, secrets: []string{o.APIKey}}, nil
}

// Complete sends req as a non-streamed chat completion.
func (p *Provider) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	ctx, cancel := provider.CallContext(ctx, p.opts.Timeout)
	defer cancel()
	resp, err := p.post(ctx, p.body(req, false))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, p.statusError(resp)
	}
	return p.decodeCompletion(ctx, resp)
}

// post sends a chat body and returns the answer; transport failures are
// typed.
func (p *Provider) post(ctx context.Context, body *chatRequest) (*http.Response, error) {
	return p.postTo(ctx, p.endpoint, body, body.Stream)
}

// postTo sends body to url.
func (p *Provider) postTo(ctx context.Context, url string, body any, stream bool) (*http.Response, error) {
	h := p.header.Clone()
	if stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	resp, err := provider.PostJSON(ctx, p.opts.HTTP, url, h, body)
	if err != nil {
		return nil, p.named(schema.AsError(err))
	}
	return resp, nil
}

// transportError types a failure to read an answer.
func (p *Provider) transportError(ctx context.Context, err error) *schema.Error {
	return p.named(provider.TransportError(ctx, err))
}

// named makes e's message start with the provider's name and removes the
// key from it, should a server or proxy have echoed it.
func (p *Provider) named(e *schema.Error) *schema.Error {
	return provider.Named(p.name, e, p.secrets...)
}

// redact removes the credentials from s.
func (p *Provider) redact(s string) string { return provider.Redact(s, p.secrets...) }

// response starts the returned Response from what the server sent; the
// caller adds the choices.
func (p *Provider) response(id, model string, u *wireUsage) *schema.Response {
	if id == "" {
		id = provider.NewID()
	}
	if model == "" {
		model = p.opts.Model
	}
	r := &schema.Response{ID: id, Model: model}
	if u != nil {
		r.Usage = schema.Usage{
			PromptTokens:     u.PromptTokens,
			CompletionTokens: u.CompletionTokens,
			TotalTokens:      u.PromptTokens + u.CompletionTokens,
		}
	}
	return r
}
