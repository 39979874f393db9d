package anthropic

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// Name is the provider's name, as it appears in error messages.
const Name = "anthropic"

// DefaultAPIBase is Anthropic's public endpoint (the host root).
const DefaultAPIBase = "https://api.anthropic.com"

// APIVersion is the anthropic-version header the adapter sends.
const APIVersion = "2023-06-01"

// DefaultMaxTokens is the max_tokens sent when a request sets no output
// limit: the Messages API requires one.
const DefaultMaxTokens = 4096

// Provider calls the Messages API. It is safe for concurrent use.
type Provider struct {
	o   provider.Options
	url string
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Streamer = (*Provider)(nil)
)

// New returns an adapter for o. Options.Model and Options.APIKey are
// required; Options.APIBase defaults to DefaultAPIBase.
func New(o provider.Options) (*Provider, error) {
	o = o.WithDefaults()
	if strings.TrimSpace(o.Model) == "" {
		return nil, schema.NewError(schema.CodeBadRequest, "anthropic: Options.Model is required")
	}
	if o.APIKey == "" {
		return nil, schema.NewError(schema.CodeBadRequest, "anthropic: Options.APIKey is required")
	}
	endpoint, err := messagesURL(o.APIBase)
	if err != nil {
		return nil, err
	}
	return &Provider{o: o, url: endpoint}, nil
}

// messagesURL returns the /v1/messages URL of base, the host root. A base
// ending in /v1 or /v1/messages is accepted as well.
func messagesURL(base string) (string, error) {
	base = strings.TrimSpace(base)
	if base == "" {
		base = DefaultAPIBase
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The base is not echoed: a malformed one may hold credentials.
		return "", schema.NewError(schema.CodeBadRequest,
			"anthropic: Options.APIBase is not an http(s) URL with a host")
	}
	u.RawQuery, u.Fragment = "", ""
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/messages")
	p = strings.TrimSuffix(p, "/v1")
	u.Path = p + "/v1/messages"
	u.RawPath = ""
	return u.String(), nil
}

// Complete sends req as one Messages call and returns the whole reply.
func (p *Provider) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	body, err := buildRequest(&p.o, p.o.Model, req, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := provider.CallContext(ctx, p.o.Timeout)
	defer cancel()
	resp, err := p.post(ctx, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r wireReply
	if err := json.NewDecoder(provider.LimitReader(resp.Body, p.o.MaxReplyBytes, "reply")).Decode(&r); err != nil {
		return nil, p.decodeError(ctx, "reply", err)
	}
	return r.response(body.jsonMode), nil
}

// post sends body and returns a 200 answer; any other answer is turned
// into a typed error.
func (p *Provider) post(ctx context.Context, body *wireRequest) (*http.Response, error) {
	h := http.Header{}
	h.Set("X-Api-Key", p.o.APIKey)
	h.Set("Anthropic-Version", APIVersion)
	if body.Stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	resp, err := provider.PostJSON(ctx, p.o.HTTP, p.url, h, body)
	if err != nil {
		return nil, p.named(provider.TransportError(ctx, err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode, resp.Header, provider.ReadErrorBody(resp), p.o.APIKey)
	}
	return resp, nil
}

// decodeError classifies a failure to read a reply (provider.ReadError).
func (p *Provider) decodeError(ctx context.Context, what string, err error) *schema.Error {
	return provider.ReadError(ctx, Name, what, err, p.o.APIKey)
}

// named returns e with the provider's name in front of its message and the
// key, should it ever appear, masked.
func (p *Provider) named(e *schema.Error) *schema.Error {
	return provider.Named(Name, e, p.o.APIKey)
}
