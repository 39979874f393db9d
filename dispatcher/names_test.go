package dispatcher_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// deploymentWorker starts the worker of a deployment written as in a
// config (its model_name and litellm_params.model, api_base the fake's).
func (e *env) deploymentWorker(modelName, model string, fake *openaitest.Server) *worker.Worker {
	e.t.Helper()
	return e.deploymentWorkerAt(modelName, model, fake.URL())
}

// deploymentWorkerAt is deploymentWorker with an api_base and more
// litellm_params lines.
func (e *env) deploymentWorkerAt(modelName, model, apiBase string, params ...string) *worker.Worker {
	e.t.Helper()
	src := "model_list:\n  - model_name: \"" + modelName + "\"\n    litellm_params:\n      model: \"" + model + "\"\n      api_base: " + apiBase + "\n"
	for _, p := range params {
		src += "      " + p + "\n"
	}
	cfg, err := config.Parse([]byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		e.t.Fatalf("config: %v", err)
	}
	wc, err := worker.FromDeployment(&cfg.ModelList[0], &cfg.RouterSettings)
	if err != nil {
		e.t.Fatalf("FromDeployment: %v", err)
	}
	wc.Conn, wc.Subjects, wc.Logger = e.srv.Connect("worker-"+broker.Token(modelName)), e.subjects, quiet()
	wc.HeartbeatInterval = 100 * time.Millisecond
	w, err := worker.New(wc)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

// calledWith is the model of the fake's last call ("" for none).
func calledWith(fake *openaitest.Server) string {
	reqs := fake.Requests()
	if len(reqs) == 0 {
		return ""
	}
	m, _ := reqs[len(reqs)-1].Body["model"].(string)
	return m
}

// complete sends a job asking for model through the client.
func (e *env) complete(model string) (*schema.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return e.client.Complete(ctx, model, ask("hi"))
}

// raw sends a JSON job on subject with headers hdr (pairs) and returns
// the reply.
func (e *env) raw(subject string, hdr ...string) *nats.Msg {
	e.t.Helper()
	m := &nats.Msg{Subject: subject, Data: []byte(`{"messages":[{"role":"user","content":"hi"}]}`),
		Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}}}
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	reply, err := e.nc.RequestMsg(m, wait)
	if err != nil {
		e.t.Fatalf("request on %s: %v", subject, err)
	}
	return reply
}

func replyOf(t *testing.T, m *nats.Msg) (*schema.Response, error) {
	t.Helper()
	return schema.DecodeReply(broker.CodecOf(m), m.Data, broker.IsError(m))
}

func TestNames_AliasGoesToItsGroup(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Aliases: map[string]string{"fast": "tier1", "gpt-4.1": "tier1"}})
	e.worker("tier1", "dep1", 2, echo())
	waitWorkers(t, d, "tier1", 1)
	for _, name := range []string{"fast", "gpt-4.1"} {
		resp, err := e.complete(name)
		if err != nil || resp.Routing.Tier != "tier1" {
			t.Fatalf("%s: %v %+v", name, err, resp)
		}
	}
	// The same through the reserved subject and its header.
	resp, err := replyOf(t, e.raw(e.subjects.ModelJobs(), schema.HeaderModel, "fast"))
	if err != nil || resp.Routing.Tier != "tier1" {
		t.Fatalf("_ + Llmq-Model fast: %v %+v", err, resp)
	}
}

func TestNames_WildcardPassesTheRequestedModel(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"openai/*"}})
	fake := openaitest.NewServer(t, openaitest.Config{})
	e.deploymentWorker("openai/*", "openai/*", fake)
	waitWorkers(t, d, "openai/*", 1)
	for _, tt := range []struct{ asked, called string }{
		{"openai/gpt-4o-mini", "gpt-4o-mini"},
		{"openai/gpt-4.1-mini", "gpt-4.1-mini"}, // a subject of two tokens
		{"gpt-4o", "gpt-4o"},                    // no provider: LiteLLM's "openai/gpt-4o"
	} {
		resp, err := e.complete(tt.asked)
		if err != nil {
			t.Fatalf("%s: %v", tt.asked, err)
		}
		if got := calledWith(fake); got != tt.called || resp.Routing.Model != tt.called || resp.Routing.Tier != "openai/*" {
			t.Errorf("%s: provider called with %q, routing %+v; want model %q in tier openai/*", tt.asked, got, resp.Routing, tt.called)
		}
	}
	// A name that cannot be a subject goes on <prefix>.jobs._.
	resp, err := replyOf(t, e.raw(e.subjects.ModelJobs(), schema.HeaderModel, "openai/.odd..name"))
	if err != nil || calledWith(fake) != ".odd..name" {
		t.Fatalf("_ + Llmq-Model: %v %+v, called %q", err, resp, calledWith(fake))
	}
}

func TestNames_CatchAllTakesWhatNothingElseDoes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"*", "tier1"}})
	fake := openaitest.NewServer(t, openaitest.Config{})
	e.deploymentWorker("*", "openai/*", fake)
	e.worker("tier1", "dep1", 2, echo())
	waitWorkers(t, d, "*", 1)
	waitWorkers(t, d, "tier1", 1)
	resp, err := e.complete("llama-3.3-70b")
	if err != nil || calledWith(fake) != "llama-3.3-70b" || resp.Routing.Tier != "*" {
		t.Fatalf("catch-all: %v %+v, called %q", err, resp, calledWith(fake))
	}
	// A model_name of its own still wins.
	if resp, err := e.complete("tier1"); err != nil || resp.Routing.Tier != "tier1" {
		t.Fatalf("tier1: %v %+v", err, resp)
	}
}

func TestNames_MostSpecificPatternWins(t *testing.T) {
	t.Parallel()
	e := setup(t)
	groups := []struct{ name, model string }{
		{"*", "openai/*"},
		{"openai/*", "openai/*"},
		{"openai/gpt-4o*", "openai/gpt-4o*"},
		{"openai/gpt-4o", "openai/gpt-4o-2024-08-06"}, // a model_name of its own beats every pattern
	}
	fakes := map[string]*openaitest.Server{}
	var tiers []string
	for _, g := range groups {
		tiers = append(tiers, g.name)
	}
	d := e.dispatcher(dispatcher.Config{Tiers: tiers})
	for _, g := range groups {
		fakes[g.name] = openaitest.NewServer(t, openaitest.Config{})
		e.deploymentWorker(g.name, g.model, fakes[g.name])
		waitWorkers(t, d, g.name, 1)
	}
	for _, tt := range []struct{ asked, group, called string }{
		{"openai/gpt-4o-mini", "openai/gpt-4o*", "gpt-4o-mini"},
		{"openai/gpt-4o", "openai/gpt-4o", "gpt-4o-2024-08-06"},
		{"openai/o3", "openai/*", "o3"},
		{"mistral/large", "*", "mistral/large"},
	} {
		resp, err := e.complete(tt.asked)
		if err != nil {
			t.Fatalf("%s: %v", tt.asked, err)
		}
		if resp.Routing.Tier != tt.group || calledWith(fakes[tt.group]) != tt.called {
			t.Errorf("%s: answered by %q (called %q), want %q calling %q", tt.asked, resp.Routing.Tier, calledWith(fakes[tt.group]), tt.group, tt.called)
		}
	}
}

// TestNames_ProducerCannotPickTheModel: Llmq-Requested-Model is the
// dispatcher's; a producer's copy is removed, so it picks no model for a
// plain tier nor a model other than the one its subject names.
func TestNames_ProducerCannotPickTheModel(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "openai/*"}})
	plain := openaitest.NewServer(t, openaitest.Config{})
	wild := openaitest.NewServer(t, openaitest.Config{})
	e.deploymentWorker("tier1", "openai/gpt-4o", plain)
	e.deploymentWorker("openai/*", "openai/*", wild)
	waitWorkers(t, d, "tier1", 1)
	waitWorkers(t, d, "openai/*", 1)
	if _, err := replyOf(t, e.raw(e.subjects.Jobs("tier1"), schema.HeaderRequestedModel, "openai/o3-pro")); err != nil {
		t.Fatal(err)
	}
	if got := calledWith(plain); got != "gpt-4o" {
		t.Errorf("plain tier called with %q, want its own gpt-4o", got)
	}
	if _, err := replyOf(t, e.raw(e.subjects.Jobs("openai/gpt-4o-mini"), schema.HeaderRequestedModel, "openai/o3-pro")); err != nil {
		t.Fatal(err)
	}
	if got := calledWith(wild); got != "gpt-4o-mini" {
		t.Errorf("wildcard group called with %q, want the subject's gpt-4o-mini", got)
	}
	if n := d.Stats().Dropped.InternalHeaders; n != 2 {
		t.Errorf("%d jobs with internal headers removed, want 2", n)
	}
}

func TestNames_UnmatchedNamesAreUnknown(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"openai/*", "tier1"}, Aliases: map[string]string{"fast": "tier9"}})
	e.worker("tier1", "dep1", 1, echo())
	waitWorkers(t, d, "tier1", 1)
	for _, tt := range []struct {
		name string
		msg  *nats.Msg
		code string
		says string
	}{
		{"no pattern matches", e.raw(e.subjects.Jobs("anthropic/claude-3")), schema.CodeUnknownTier,
			`unknown tier "anthropic/claude-3": no model_name, alias or wildcard model_name matches it (known: `},
		{"an alias to nothing", e.raw(e.subjects.Jobs("fast")), schema.CodeUnknownTier, `alias "fast": unknown tier "tier9"`},
		{"no Llmq-Model", e.raw(e.subjects.ModelJobs()), schema.CodeBadRequest, "names its model in the header Llmq-Model"},
		{"a bad Llmq-Model", e.raw(e.subjects.ModelJobs(), schema.HeaderModel, "a*b"), schema.CodeUnknownTier, "not a valid model name"},
		{"a pattern is no name", e.raw(e.subjects.ModelJobs(), schema.HeaderModel, strings.Repeat("m", broker.MaxModelLen+1)), schema.CodeUnknownTier, "not a valid model name"},
	} {
		_, err := replyOf(t, tt.msg)
		if schema.CodeOf(err) != tt.code || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v, want %s saying %q", tt.name, err, tt.code, tt.says)
		}
	}
}

// TestNames_FallbackToAName: a fallback may name a model a wildcard group
// serves; the job then calls that model.
func TestNames_FallbackToAName(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1", "openai/*"}, Policy: dispatcher.Policy{
		Fallbacks: map[string][]string{"tier1": {"openai/gpt-4o-mini"}}}})
	fake := openaitest.NewServer(t, openaitest.Config{})
	e.worker("tier1", "dep1", 1, provider.Func(func(context.Context, *schema.Request) (*schema.Response, error) {
		return nil, schema.NewError(schema.CodeProviderError, "down")
	}))
	e.deploymentWorker("openai/*", "openai/*", fake)
	waitWorkers(t, d, "tier1", 1)
	waitWorkers(t, d, "openai/*", 1)
	resp, err := e.complete("tier1")
	if err != nil || resp.Routing.Tier != "openai/*" || calledWith(fake) != "gpt-4o-mini" {
		t.Fatalf("%v %+v, called %q", err, resp, calledWith(fake))
	}
}

// TestNames_StopHandsBackWhatTheJobAskedFor: a dispatcher stopping hands
// a queued job for a wildcard group back under the name it asked for
// (its subject, or <prefix>.jobs._ with Llmq-Model), never under the
// pattern.
func TestNames_StopHandsBackWhatTheJobAskedFor(t *testing.T) {
	t.Parallel()
	e := setup(t)
	fake := openaitest.NewServer(t, openaitest.Config{})
	target, err := url.Parse(strings.TrimSuffix(fake.URL(), "/v1"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	release, started := make(chan struct{}), make(chan struct{}, 8)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	d1 := e.dispatcher(dispatcher.Config{Tiers: []string{"openai/*"}})
	e.deploymentWorkerAt("openai/*", "openai/*", front.URL+"/v1", "max_parallel_requests: 1")
	waitWorkers(t, d1, "openai/*", 1)
	type answer struct {
		model string
		err   error
	}
	done := make(chan answer, 3)
	send := func(subject string, hdr ...string) {
		go func() {
			m := &nats.Msg{Subject: subject, Data: []byte(`{"messages":[{"role":"user","content":"hi"}]}`),
				Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}}}
			for i := 0; i+1 < len(hdr); i += 2 {
				m.Header.Set(hdr[i], hdr[i+1])
			}
			reply, err := e.nc.RequestMsg(m, wait)
			if err != nil {
				done <- answer{err: err}
				return
			}
			resp, err := replyOf(t, reply)
			if err != nil {
				done <- answer{err: err}
				return
			}
			done <- answer{model: resp.Routing.Model}
		}()
	}
	send(e.subjects.Jobs("openai/first"))
	<-started
	send(e.subjects.Jobs("openai/gpt-4.1-mini"))
	send(e.subjects.ModelJobs(), schema.HeaderModel, "openai/odd..name")
	deadline := time.Now().Add(wait)
	for queued(d1, "openai/*") != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a snapshot
	}
	d2 := e.dispatcher(dispatcher.Config{Tiers: []string{"openai/*"}})
	waitWorkers(t, d2, "openai/*", 1)
	if err := d1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(release)
	var models []string
	for range 3 {
		a := <-done
		if a.err != nil {
			t.Fatalf("job lost in hand-back: %v", a.err)
		}
		models = append(models, a.model)
	}
	slices.Sort(models)
	if !slices.Equal(models, []string{"first", "gpt-4.1-mini", "odd..name"}) {
		t.Fatalf("models called: %q", models)
	}
	if n := d2.Stats().Dispatched; n != 2 {
		t.Fatalf("second dispatcher dispatched %d, want the 2 handed back", n)
	}
}
