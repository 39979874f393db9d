package openaitest

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Azure makes a fake answer as Azure OpenAI does
// (https://learn.microsoft.com/azure/ai-services/openai/reference):
//
//   - it serves POST /openai/deployments/{deployment}/chat/completions and
//     /openai/deployments/{deployment}/embeddings only,
//     and only with an api-version query parameter it knows; anything else
//     is a 404 {"error":{"code":"404","message":"Resource not found"}}, as
//     Azure answers a missing or unknown api-version;
//   - it wants the key in an "api-key" header, or an Entra ID token as
//     "Authorization: Bearer <token>"; a missing credential, a wrong key,
//     or a key sent as a Bearer token is a 401 with Azure's messages;
//   - a deployment other than Deployment is a 404 DeploymentNotFound;
//   - the body's model may be left out (the deployment names the model);
//   - replies carry the deployment's model name (Model), Azure's
//     prompt_filter_results and content_filter_results, and a stream
//     starts with Azure's chunk of prompt filter results, which has no
//     choices.
//
// Body validation, answers, StreamFault, Fail and the rest work as for
// OpenAI.
type Azure struct {
	// Deployment is the only deployment served; "" serves any name.
	Deployment string
	// APIVersions are the api-version values accepted; nil means
	// AzureAPIVersions.
	APIVersions []string
	// ADToken, when set, is the Entra ID token accepted as a Bearer
	// token. Config.Key, when set, is the only api-key accepted. With
	// neither set, any non-empty credential is.
	ADToken string
	// Model is the model name replies carry. Default "gpt-4o-2024-08-06".
	Model string
}

// AzureAPIVersions are data-plane inference versions Azure OpenAI
// accepts, GA and preview.
var AzureAPIVersions = []string{
	"2024-02-01", "2024-06-01", "2024-10-21",
	"2024-08-01-preview", "2024-12-01-preview", "2025-01-01-preview", "2025-02-01-preview",
}

var azurePath = regexp.MustCompile(`^/openai/deployments/([^/]+)/(?:chat/completions|embeddings)$`)

// AzurePath is the path of a deployment's chat completions.
func AzurePath(deployment string) string {
	return "/openai/deployments/" + deployment + "/chat/completions"
}

// AzureEmbeddingsPath is the path of a deployment's embeddings.
func AzureEmbeddingsPath(deployment string) string {
	return "/openai/deployments/" + deployment + "/embeddings"
}

// azureError is Azure's own error body, {"error":{"code","message"}},
// which it answers for routing and authentication failures (errors of the
// model itself have OpenAI's shape).
func azureError(status int, code, message string) Failure {
	return Failure{Status: status, Body: map[string]any{"error": map[string]any{"code": code, "message": message}}}
}

// AzureResourceNotFound is Azure's 404 for a wrong path or a missing or
// unknown api-version.
func AzureResourceNotFound() Failure {
	return azureError(http.StatusNotFound, "404", "Resource not found")
}

// DeploymentNotFound is Azure's 404 for a deployment the resource does not
// have.
func DeploymentNotFound() Failure {
	return azureError(http.StatusNotFound, "DeploymentNotFound", "The API deployment for this resource does not exist. "+
		"If you created the deployment within the last 5 minutes, please wait a moment and try again.")
}

// AzureRateLimited is Azure's 429: a Retry-After header in whole seconds
// and the same wait in the message.
func AzureRateLimited(retryAfter time.Duration) Failure {
	secs := max(1, int((retryAfter+time.Second-1)/time.Second))
	f := azureError(http.StatusTooManyRequests, "429", fmt.Sprintf(
		"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded "+
			"token rate limit of your current OpenAI S0 pricing tier. Please retry after %d seconds. "+
			"Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.", secs))
	f.Header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	return f
}

// Messages of Azure's 401s.
const (
	azureNoKey    = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."
	azureBadKey   = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."
	azureBadToken = "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired."
)

// check applies Azure's routing and authentication to r; key is the
// api-key wanted ("" for any).
func (a *Azure) check(r *http.Request, key string) *Failure {
	m := azurePath.FindStringSubmatch(r.URL.Path)
	versions := a.APIVersions
	if versions == nil {
		versions = AzureAPIVersions
	}
	if m == nil || r.Method != http.MethodPost || !slices.Contains(versions, r.URL.Query().Get("api-version")) {
		return ptr(AzureResourceNotFound())
	}
	if f := a.auth(r, key); f != nil {
		return f
	}
	if a.Deployment != "" && m[1] != a.Deployment {
		return ptr(DeploymentNotFound())
	}
	return nil
}

func (a *Azure) auth(r *http.Request, key string) *Failure {
	apiKey := r.Header.Get("Api-Key")
	authz := r.Header.Get("Authorization")
	switch {
	case apiKey != "":
		if (key != "" && apiKey != key) || (key == "" && a.ADToken != "") {
			return ptr(azureError(http.StatusUnauthorized, "401", azureBadKey))
		}
		return nil
	case authz != "":
		// An api key sent as a Bearer token is not an Entra ID token.
		token, ok := cutBearer(authz)
		if !ok || token == "" || (a.ADToken != "" && token != a.ADToken) || (a.ADToken == "" && key != "") {
			return ptr(azureError(http.StatusUnauthorized, "401", azureBadToken))
		}
		return nil
	}
	return ptr(azureError(http.StatusUnauthorized, "401", azureNoKey))
}

func cutBearer(h string) (string, bool) {
	const bearer = "Bearer "
	if len(h) < len(bearer) || h[:len(bearer)] != bearer {
		return "", false
	}
	return h[len(bearer):], true
}

func (a *Azure) model() string {
	if a.Model != "" {
		return a.Model
	}
	return "gpt-4o-2024-08-06"
}

// azureFilters is Azure's content filter verdict on a prompt or a choice:
// nothing filtered.
func azureFilters() map[string]any {
	safe := map[string]any{"filtered": false, "severity": "safe"}
	return map[string]any{"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe}
}

func azurePromptFilters() []map[string]any {
	return []map[string]any{{"prompt_index": 0, "content_filter_results": azureFilters()}}
}
