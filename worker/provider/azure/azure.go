// Package azure is the llmq adapter for Azure OpenAI. Azure speaks the
// Chat Completions body, stream and errors of OpenAI under its own URL and
// authentication, so the adapter is package openai's, built with an
// openai.Endpoint:
//
//	POST {api_base}/openai/deployments/{deployment}/chat/completions?api-version={api_version}
//	POST {api_base}/openai/deployments/{deployment}/embeddings?api-version={api_version}
//	api-key: {api_key}                     (or)
//	Authorization: Bearer {azure_ad_token}
//
// api_base is the resource's root (https://<resource>.openai.azure.com,
// or a gateway's URL in front of it); the deployment is the name after
// "azure/" in litellm_params.model. docs/providers/openai.md has the
// details; package openaitest's Azure mode is a strict fake.
package azure

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
)

// Name starts the adapter's error messages.
const Name = "azure"

// DefaultAPIVersion is the api-version sent when neither litellm_params
// nor AZURE_API_VERSION gives one: the latest generally available
// data-plane inference version (preview versions come and go).
const DefaultAPIVersion = "2024-10-21"

// Options are what Azure needs besides provider.Options (whose Model is
// the deployment, APIBase the resource root and APIKey the api-key).
type Options struct {
	// APIVersion is the api-version query parameter. Default
	// DefaultAPIVersion.
	APIVersion string
	// ADToken is a Microsoft Entra ID (Azure AD) access token, sent as
	// "Authorization: Bearer" when no APIKey is set.
	ADToken string
}

// New returns an adapter for the deployment o.Model of the resource
// o.APIBase. o.APIBase, o.Model and one of o.APIKey and az.ADToken are
// required; with both, the key is used. Invalid options are a bad_request
// *schema.Error naming the litellm_params key to fix, never its value.
func New(o provider.Options, az Options) (*openai.Provider, error) {
	endpoint, err := URL(o.APIBase, o.Model, az.APIVersion)
	if err != nil {
		return nil, err
	}
	embeddings, err := EmbeddingsURL(o.APIBase, o.Model, az.APIVersion)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	switch {
	case o.APIKey != "":
		h.Set("Api-Key", o.APIKey)
	case az.ADToken != "":
		h.Set("Authorization", "Bearer "+az.ADToken)
	default:
		return nil, schema.NewError(schema.CodeBadRequest,
			"azure: an api_key (or AZURE_API_KEY) or an azure_ad_token (or AZURE_AD_TOKEN) is required")
	}
	return openai.NewEndpoint(o, openai.Endpoint{
		Name: Name, URL: endpoint, EmbeddingsURL: embeddings, Header: h, Secrets: []string{o.APIKey, az.ADToken},
	})
}

// URL returns the chat-completions URL of deployment on the resource at
// base, with api-version (DefaultAPIVersion when empty).
func URL(base, deployment, apiVersion string) (string, error) {
	return deploymentURL(base, deployment, apiVersion, "/chat/completions")
}

// EmbeddingsURL returns the embeddings URL of deployment on the resource
// at base, with api-version (DefaultAPIVersion when empty).
func EmbeddingsURL(base, deployment, apiVersion string) (string, error) {
	return deploymentURL(base, deployment, apiVersion, "/embeddings")
}

func deploymentURL(base, deployment, apiVersion, op string) (string, error) {
	base = strings.TrimSpace(base)
	if base == "" {
		return "", schema.NewError(schema.CodeBadRequest,
			"azure: api_base (or AZURE_API_BASE) is required: the resource's endpoint, https://<resource>.openai.azure.com")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not echoed: a malformed base may hold a key.
		return "", schema.NewError(schema.CodeBadRequest, "azure: api_base is not an absolute http(s) URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(u.Path, "/openai/deployments") {
		return "", schema.Errorf(schema.CodeBadRequest,
			"azure: api_base must be the resource's endpoint (%s://%s), without /openai/deployments/… or ?api-version: "+
				"llmq builds the path from the deployment in the model name and api_version", u.Scheme, u.Host)
	}
	deployment = strings.TrimSpace(deployment)
	if deployment == "" || strings.ContainsAny(deployment, "/?#") {
		return "", schema.NewError(schema.CodeBadRequest,
			"azure: the model must be azure/<deployment>, the deployment's name as the Azure portal shows it")
	}
	if apiVersion = strings.TrimSpace(apiVersion); apiVersion == "" {
		apiVersion = DefaultAPIVersion
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/openai/deployments/" + deployment + op
	u.RawPath = ""
	u.RawQuery = url.Values{"api-version": {apiVersion}}.Encode()
	return u.String(), nil
}
