package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/sse"
)

// DefaultAPIBase is the Gemini API's public host root.
const DefaultAPIBase = "https://generativelanguage.googleapis.com"

// apiVersion is the path prefix of the API version the adapter speaks.
const apiVersion = "/v1beta"

// Provider calls the Gemini API. It is safe for concurrent use.
type Provider struct {
	opts        provider.Options
	model       string
	key         string
	completeURL string
	streamURL   string
	embedURL    string
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Streamer = (*Provider)(nil)
	_ provider.Embedder = (*Provider)(nil)
)

// New returns an adapter for the model o.Model. o.APIKey is required; an
// empty o.APIBase means DefaultAPIBase. APIBase is the host root; a
// trailing "/v1beta" is tolerated and dropped.
func New(o provider.Options) (*Provider, error) {
	o = o.WithDefaults()
	model := strings.TrimPrefix(strings.TrimSpace(o.Model), "models/")
	if model == "" {
		return nil, errors.New("gemini: option Model is required (e.g. \"gemini-2.0-flash\")")
	}
	if strings.ContainsAny(model, "/?#: \t") {
		return nil, errors.New("gemini: option Model must be a bare model name (e.g. \"gemini-2.0-flash\")")
	}
	if o.APIKey == "" {
		return nil, errors.New("gemini: option APIKey is required (the Gemini API key, sent as x-goog-api-key)")
	}
	base := strings.TrimRight(strings.TrimSpace(o.APIBase), "/")
	if base == "" {
		base = DefaultAPIBase
	}
	base = strings.TrimSuffix(base, apiVersion)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, errors.New("gemini: option APIBase must be an http(s) URL of the API host root, without query or credentials")
	}
	prefix := base + apiVersion + "/models/" + url.PathEscape(model)
	return &Provider{
		opts:        o,
		model:       model,
		key:         o.APIKey,
		completeURL: prefix + ":generateContent",
		streamURL:   prefix + ":streamGenerateContent?alt=sse",
		embedURL:    prefix + ":batchEmbedContents",
	}, nil
}

// headers returns the request headers: the key and nothing secret else.
func (p *Provider) headers() http.Header {
	return http.Header{"X-Goog-Api-Key": {p.key}}
}

// Complete sends one generateContent call and returns its reply.
func (p *Provider) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	body, err := p.buildRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := provider.CallContext(ctx, p.opts.Timeout)
	defer cancel()
	resp, err := provider.PostJSON(ctx, p.opts.HTTP, p.completeURL, p.headers(), body)
	if err != nil {
		return nil, p.named(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, p.httpError(resp)
	}
	defer resp.Body.Close()
	var out generateResponse
	if err := json.NewDecoder(provider.LimitReader(resp.Body, p.opts.MaxReplyBytes, "reply")).Decode(&out); err != nil {
		return nil, p.readError(ctx, "reply", err)
	}
	if out.Error != nil {
		return nil, p.classify(0, nil, out.Error)
	}
	if len(out.Candidates) == 0 {
		return nil, noCandidates(out.PromptFeedback)
	}
	r := newReply(choices(req))
	if _, err := r.add(&out); err != nil {
		return nil, err
	}
	return r.response(p.model), nil
}

// choices is how many candidates the request asks for, clamped to
// 1…schema.MaxChoices (the reply is sized by it).
func choices(req *schema.Request) int {
	if req.N != nil {
		return min(max(*req.N, 1), schema.MaxChoices)
	}
	return 1
}

// Stream sends one streamGenerateContent call, calls emit with each piece
// in order — text, and each function call whole (Gemini streams them
// whole) — and returns the whole reply when the stream ends with a finish
// reason. A stream that ends without one was cut off (connection_error).
func (p *Provider) Stream(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
	body, err := p.buildRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := provider.CallContext(ctx, p.opts.StreamTimeout)
	defer cancel()
	resp, err := provider.PostJSON(ctx, p.opts.HTTP, p.streamURL, p.headers(), body)
	if err != nil {
		return nil, p.named(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, p.httpError(resp)
	}
	// Closing the body before its end drops the connection, which is how
	// the upstream call is cancelled when emit fails.
	defer resp.Body.Close()

	rep := newReply(choices(req))
	r := sse.NewReader(provider.LimitReader(resp.Body, p.opts.MaxStreamBytes, "stream"))
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, p.readError(ctx, "stream", err)
		}
		if len(ev.Data) == 0 {
			continue
		}
		var chunk generateResponse
		if err := json.Unmarshal(ev.Data, &chunk); err != nil {
			return nil, malformed("stream event", err)
		}
		if chunk.Error != nil {
			return nil, p.classify(0, nil, chunk.Error)
		}
		if len(chunk.Candidates) == 0 && chunk.PromptFeedback != nil && chunk.PromptFeedback.BlockReason != "" {
			return nil, noCandidates(chunk.PromptFeedback)
		}
		pieces, err := rep.add(&chunk)
		if err != nil {
			return nil, err
		}
		for _, pc := range pieces {
			if err := emit(pc); err != nil {
				return nil, err
			}
		}
	}
	if !rep.complete() {
		return nil, schema.Errorf(schema.CodeConnection, "%s: stream ended before a finish reason (cut off)", name)
	}
	return rep.response(p.model), nil
}

// readError classifies a failure to read a 200 reply: the call's deadline,
// a dropped connection, or a body that is not the documented JSON.
func (p *Provider) readError(ctx context.Context, what string, err error) *schema.Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if ctx.Err() == nil && (errors.As(err, &syn) || errors.As(err, &typ)) {
		return malformed(what, err)
	}
	return p.named(provider.TransportError(ctx, err))
}

// named returns err as a typed error whose message names the provider and
// holds no key.
func (p *Provider) named(err error) *schema.Error {
	return provider.Named(name, schema.AsError(err), p.key)
}
