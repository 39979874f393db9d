package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// wildcardWorker starts the worker of deployment model_name/model with
// the fake as its api_base.
func (e *env) wildcardWorker(modelName, model string, fake *openaitest.Server) {
	e.t.Helper()
	cfg, err := config.Parse([]byte("model_list:\n  - model_name: \""+modelName+"\"\n    litellm_params:\n      model: \""+model+"\"\n      api_base: "+fake.URL()+"\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		e.t.Fatal(err)
	}
	wc, err := worker.FromDeployment(&cfg.ModelList[0], &cfg.RouterSettings)
	if err != nil {
		e.t.Fatal(err)
	}
	wc.Conn, wc.Subjects, wc.Logger, wc.HeartbeatInterval = e.srv.Connect("worker-wild"), e.subjects, quiet(), 100*time.Millisecond
	w, err := worker.New(wc)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = w.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := e.d.WaitWorkers(ctx, modelName, 1); err != nil {
		e.t.Fatal(err)
	}
}

func calledWith(fake *openaitest.Server) string {
	reqs := fake.Requests()
	if len(reqs) == 0 {
		return ""
	}
	m, _ := reqs[len(reqs)-1].Body["model"].(string)
	return m
}

func namesEnv(t *testing.T, fc openaitest.Config) (*env, *openaitest.Server) {
	aliases := map[string]string{"fast": "tier1", "secret-fast": "tier1"}
	e := setup(t, gateway.Config{Tiers: []string{"tier1", "openai/*"}, Aliases: map[string]gateway.Alias{
		"fast": {Model: "tier1"}, "secret-fast": {Model: "tier1", Hidden: true},
	}}, dispatcher.Config{Tiers: []string{"openai/*"}, Aliases: aliases})
	fake := openaitest.NewServer(t, fc)
	e.worker("tier1", "dep1", 4, echo())
	e.wildcardWorker("openai/*", "openai/*", fake)
	return e, fake
}

// TestGateway_WildcardModelJustWorks: model "openai/gpt-4o-mini" reaches
// the openai/* deployment, which calls gpt-4o-mini; plain and streamed.
func TestGateway_WildcardModelJustWorks(t *testing.T) {
	t.Parallel()
	e, fake := namesEnv(t, openaitest.Config{})
	resp := e.post(chat("openai/gpt-4o-mini", "hi"))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var c schema.Response
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if calledWith(fake) != "gpt-4o-mini" || c.Model != "gpt-4o-mini" || c.Routing.Tier != "openai/*" || c.Routing.Model != "gpt-4o-mini" {
		t.Fatalf("provider called with %q; reply model %q, routing %+v", calledWith(fake), c.Model, c.Routing)
	}
	resp = e.post(chat("openai/gpt-4.1-nano", "hi", `,"stream":true`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream status %d", resp.StatusCode)
	}
	events := sse(t, resp.Body)
	if len(events) < 2 || events[len(events)-1] != "[DONE]" || !strings.Contains(events[0], `"model":"gpt-4.1-nano"`) {
		t.Fatalf("stream events %q", events)
	}
	if calledWith(fake) != "gpt-4.1-nano" {
		t.Fatalf("stream called %q", calledWith(fake))
	}
	// Counted under the wildcard tier, not under the made-up names.
	for _, r := range e.rec.await(t, 2) {
		if r.Tier != "openai/*" {
			t.Errorf("request counted under tier %q, want openai/*", r.Tier)
		}
	}
}

// TestGateway_WildcardModelTheProviderLacks: for a wildcard deployment
// the model is the client's choice, so the provider's "no such model" is
// the client's 404 model_not_found (for a fixed deployment it is a 502).
func TestGateway_WildcardModelTheProviderLacks(t *testing.T) {
	t.Parallel()
	e, _ := namesEnv(t, openaitest.Config{Model: "gpt-4o-mini"})
	wantError(t, e.post(chat("openai/gpt-9", "hi")), 404, "invalid_request_error", "model_not_found", schema.CodeUnknownTier)
	if resp := e.post(chat("openai/gpt-4o-mini", "hi")); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestGateway_AliasesAndWildcards_InModels(t *testing.T) {
	t.Parallel()
	e, _ := namesEnv(t, openaitest.Config{})
	for _, m := range []string{"fast", "secret-fast"} {
		resp := e.post(chat(m, "hi"))
		body, _ := io.ReadAll(resp.Body)
		var c schema.Response
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &c) != nil || c.Routing.Tier != "tier1" {
			t.Fatalf("%s: %d %s", m, resp.StatusCode, body)
		}
	}
	resp := e.do("GET", "/v1/models", "")
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{"fast", "tier1"}) {
		t.Errorf("/v1/models lists %q, want fast and tier1 (no hidden alias, no pattern)", ids)
	}
	for _, path := range []string{"/v1/models/openai/gpt-4o-mini", "/v1/models/fast", "/v1/models/secret-fast"} {
		if resp := e.do("GET", path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	wantError(t, e.do("GET", "/v1/models/anthropic/claude", ""), 404, "invalid_request_error", "model_not_found", "")
	e2 := wantError(t, e.post(chat("anthropic/claude-3", "hi")), 404, "invalid_request_error", "model_not_found", schema.CodeUnknownTier)
	if !strings.Contains(e2.Error.Message, "no model_name, alias or wildcard model_name matches it") {
		t.Errorf("message %q", e2.Error.Message)
	}
}
