package openai

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// Endpoint lets a service that speaks the Chat Completions body, stream
// and errors under its own URL and authentication use this adapter, as
// Azure OpenAI does (package azure builds one).
type Endpoint struct {
	// Name starts the adapter's error messages ("azure"). Required.
	Name string
	// URL is the whole chat-completions URL, query included. Required.
	URL string
	// EmbeddingsURL is the whole embeddings URL, query included; empty
	// when the service has none (Embed then refuses the job).
	EmbeddingsURL string
	// Header holds the credentials sent with every call. Its values are
	// removed from error messages, as are Secrets.
	Header  http.Header
	Secrets []string
}

// NewEndpoint returns an adapter that posts to ep.URL with ep.Header.
// Options.Model is required and is sent as the body's model;
// Options.APIBase and Options.APIKey are not used (ep carries them).
// Invalid options are a bad_request *schema.Error that names them and
// never the URL's query or the credentials.
func NewEndpoint(o provider.Options, ep Endpoint) (*Provider, error) {
	o = o.WithDefaults()
	o.Model = strings.TrimSpace(o.Model)
	if ep.Name == "" {
		return nil, schema.NewError(schema.CodeBadRequest, "openai: Endpoint.Name is required")
	}
	if o.Model == "" {
		return nil, schema.Errorf(schema.CodeBadRequest, "%s: model is required (Options.Model)", ep.Name)
	}
	if !isHTTPURL(ep.URL) {
		return nil, schema.Errorf(schema.CodeBadRequest, "%s: Endpoint.URL must be an absolute http(s) URL", ep.Name)
	}
	if ep.EmbeddingsURL != "" && !isHTTPURL(ep.EmbeddingsURL) {
		return nil, schema.Errorf(schema.CodeBadRequest, "%s: Endpoint.EmbeddingsURL must be an absolute http(s) URL", ep.Name)
	}
	h := ep.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	secrets := append([]string(nil), ep.Secrets...)
	for _, vs := range h {
		for _, v := range vs {
			secrets = append(secrets, v, strings.TrimPrefix(v, "Bearer "))
		}
	}
	o.APIBase, o.APIKey = "", ""
	return &Provider{opts: o, name: ep.Name, endpoint: ep.URL, embedEndpoint: ep.EmbeddingsURL, header: h, secrets: secrets}, nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
