package cohere

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
const Name = "cohere"

// DefaultAPIBase is Cohere's public endpoint (the host root).
const DefaultAPIBase = "https://api.cohere.com"

// Provider calls Cohere's v2 chat API. It is safe for concurrent use.
type Provider struct {
	o   provider.Options
	url string
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Streamer = (*Provider)(nil)
)

// New returns an adapter for o. Options.Model and Options.APIKey are
// required; Options.APIBase defaults to DefaultAPIBase. Invalid options
// are a bad_request *schema.Error naming the option, never its value.
func New(o provider.Options) (*Provider, error) {
	o = o.WithDefaults()
	o.Model = strings.TrimSpace(o.Model)
	if o.Model == "" {
		return nil, schema.NewError(schema.CodeBadRequest, "cohere: Options.Model is required (e.g. command-r-plus)")
	}
	if o.APIKey == "" {
		return nil, schema.NewError(schema.CodeBadRequest, "cohere: Options.APIKey is required (api_key, COHERE_API_KEY or CO_API_KEY)")
	}
	endpoint, err := chatURL(o.APIBase)
	if err != nil {
		return nil, err
	}
	return &Provider{o: o, url: endpoint}, nil
}

// chatURL returns the /v2/chat URL of base, the host root; a base that
// already ends in a version or chat path is accepted.
func chatURL(base string) (string, error) {
	base = strings.TrimSpace(base)
	if base == "" {
		base = DefaultAPIBase
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not echoed: a malformed base may hold credentials.
		return "", schema.NewError(schema.CodeBadRequest, "cohere: Options.APIBase is not an http(s) URL with a host")
	}
	u.RawQuery, u.Fragment = "", ""
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/chat")
	p = strings.TrimSuffix(strings.TrimSuffix(p, "/v1"), "/v2")
	u.Path, u.RawPath = p+"/v2/chat", ""
	return u.String(), nil
}

// Complete sends req as one chat call and returns the whole reply.
func (p *Provider) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	body, err := p.buildRequest(req, false)
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
	msg := schema.Message{Role: schema.RoleAssistant, Content: schema.Content(r.Message.text()), ToolCalls: r.Message.toolCalls()}
	return p.response(r.ID, msg, r.FinishReason, r.Usage, logprobs(r.Logprobs))
}

// post sends body and returns a 200 answer; any other answer is turned
// into a typed error.
func (p *Provider) post(ctx context.Context, body *wireRequest) (*http.Response, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+p.o.APIKey)
	if body.Stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	resp, err := provider.PostJSON(ctx, p.o.HTTP, p.url, h, body)
	if err != nil {
		return nil, p.named(schema.AsError(err))
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
