package ollama

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// CheckModel asks the host which models it has (GET /api/tags) and returns
// nil when the configured model is among them. Otherwise it returns a
// not_found *schema.Error naming the model, the host and the models the
// host has. A name without a tag means ":latest", and names compare
// without case, as Ollama compares them. A host that cannot be reached or
// answers with an error yields the same typed errors as Complete.
func (p *Provider) CheckModel(ctx context.Context) error {
	ctx, cancel := provider.CallContext(ctx, p.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.tagsURL, nil)
	if err != nil {
		return schema.Errorf(schema.CodeInternal, "%s: build request: %v", Name, err)
	}
	for k, v := range p.headers("application/json") {
		req.Header[k] = v
	}
	resp, err := p.o.HTTP.Do(req)
	if err != nil {
		return p.clean(provider.TransportError(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := p.httpError(resp)
		e.Message = fmt.Sprintf("%s (listing models: GET %s/api/tags)", e.Message, p.host)
		return e
	}
	var tags tagsResponse
	if err := json.NewDecoder(provider.LimitReader(resp.Body, p.o.MaxReplyBytes, "model list")).Decode(&tags); err != nil {
		return p.readError(ctx, err)
	}
	want := canonicalName(p.model)
	var have []string
	for _, m := range tags.Models {
		if canonicalName(m.Name) == want || canonicalName(m.Model) == want {
			return nil
		}
		have = append(have, m.Name)
	}
	slices.Sort(have)
	list := "it has no models"
	if len(have) > 0 {
		list = "it has: " + strings.Join(have, ", ")
	}
	return schema.Errorf(schema.CodeNotFound,
		"%s: model %q is not on host %s (%s); pull it there with `ollama pull %s`",
		Name, p.model, p.host, list, p.model)
}

// canonicalName returns the form of an Ollama model name that two names
// of the same model share: lower case, the default registry and namespace
// dropped, the tag ":latest" when there is none.
func canonicalName(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		return ""
	}
	n = strings.TrimPrefix(n, "registry.ollama.ai/")
	n = strings.TrimPrefix(n, "library/")
	last := n[strings.LastIndexByte(n, '/')+1:]
	if !strings.Contains(last, ":") {
		n += ":latest"
	}
	return n
}
