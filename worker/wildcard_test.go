package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// deploymentWorker starts the worker of the one deployment in yaml.
func (e *env) deploymentWorker(yaml string) *worker.Worker {
	e.t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		e.t.Fatalf("config: %v", err)
	}
	wc, err := worker.FromDeployment(&cfg.ModelList[0], &cfg.RouterSettings)
	if err != nil {
		e.t.Fatalf("FromDeployment: %v", err)
	}
	wc.Conn, wc.Subjects, wc.Logger, wc.HeartbeatInterval = e.srv.Connect("worker"), e.subjects, quiet(), time.Hour
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

func oneDeployment(modelName, model, apiBase string) string {
	return "model_list:\n  - model_name: \"" + modelName + "\"\n    litellm_params:\n      model: \"" + model + "\"\n      api_base: " + apiBase + "\n"
}

// lastModel is the model the fake was last called with.
func lastModel(t *testing.T, fake *openaitest.Server) string {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) == 0 {
		t.Fatal("the provider was not called")
	}
	m, _ := reqs[len(reqs)-1].Body["model"].(string)
	return m
}

func errorCode(t *testing.T, m *nats.Msg) string {
	t.Helper()
	if !broker.IsError(m) {
		t.Fatalf("reply is no error: %s", m.Data)
	}
	return m.Header.Get(schema.HeaderErrorCode)
}

func TestWildcard_CallsTheModelTheJobAskedFor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, modelName, model, requested, called string
	}{
		{"openai/* passes the name on", "openai/*", "openai/*", "openai/gpt-4o-mini", "gpt-4o-mini"},
		{"a prefix of its own", "llmengine/*", "openai/*", "llmengine/foo", "foo"},
		{"a partial pattern", "anthropic/claude-*", "openai/claude-*", "anthropic/claude-3-haiku", "claude-3-haiku"},
		{"two stars", "fo::*:static::*", "openai/fo::*:static::*", "fo::hi:static::there", "fo::hi:static::there"},
		{"* to openai/*", "*", "openai/*", "gpt-4.1", "gpt-4.1"},
		{"* to *: the provider from the name", "*", "*", "openai/o3-mini", "o3-mini"},
		{"more matches than stars: the name as it is", "*/*", "openai/*", "openai/gpt-4o", "gpt-4o"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			fake := openaitest.NewServer(t, openaitest.Config{})
			w := e.deploymentWorker(oneDeployment(tt.modelName, tt.model, fake.URL()))
			resp := decodeResponse(t, e.request(job(t, w, ask("hi"), schema.HeaderRequestedModel, tt.requested)))
			if got := lastModel(t, fake); got != tt.called {
				t.Errorf("provider called with model %q, want %q", got, tt.called)
			}
			if resp.Routing.Model != tt.called || resp.Routing.Provider != "openai" || resp.Routing.Tier != tt.modelName {
				t.Errorf("routing = %+v, want model %q, provider openai, tier %q", resp.Routing, tt.called, tt.modelName)
			}
		})
	}
}

func TestWildcard_StreamsWithTheModelAskedFor(t *testing.T) {
	t.Parallel()
	e := setup(t)
	fake := openaitest.NewServer(t, openaitest.Config{Reply: "one two three"})
	w := e.deploymentWorker(oneDeployment("openai/*", "openai/*", fake.URL()))
	req := ask("hi")
	req.Stream = true
	m := job(t, w, req, schema.HeaderRequestedModel, "openai/gpt-4o-mini")
	m.Reply = e.nc.NewRespInbox()
	sub, err := e.nc.SubscribeSync(m.Reply)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for {
		msg, err := sub.NextMsg(wait)
		if err != nil {
			t.Fatal(err)
		}
		var c schema.Chunk
		if err := schema.MsgPack.Unmarshal(msg.Data, &c); err != nil || broker.IsError(msg) {
			t.Fatalf("chunk %s: %v", msg.Data, err)
		}
		if c.Model != "gpt-4o-mini" {
			t.Errorf("chunk model %q, want gpt-4o-mini", c.Model)
		}
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
		if msg.Header.Get(schema.HeaderStream) == schema.StreamEnd {
			break
		}
	}
	if text.String() != "one two three" || lastModel(t, fake) != "gpt-4o-mini" {
		t.Errorf("streamed %q from model %q", text.String(), lastModel(t, fake))
	}
}

func TestWildcard_RefusesWhatItCannotCall(t *testing.T) {
	t.Parallel()
	e := setup(t)
	fake := openaitest.NewServer(t, openaitest.Config{Model: "gpt-4o-mini"})
	open := e.deploymentWorker(oneDeployment("openai/*", "openai/*", fake.URL()))
	anyModel := e.deploymentWorker(oneDeployment("*", "*", fake.URL()))
	for _, tt := range []struct {
		name string
		w    *worker.Worker
		hdr  []string
		code string
		msg  string
	}{
		{"no requested model", open, nil, schema.CodeBadRequest, "send the job through a dispatcher"},
		{"not a model name", open, []string{schema.HeaderRequestedModel, "openai/a b"}, schema.CodeBadRequest, "not a valid model name"},
		{"not its pattern", open, []string{schema.HeaderRequestedModel, "anthropic/claude"}, schema.CodeUnknownTier, `does not match the wildcard model group "openai/*"`},
		{"no provider in the name", anyModel, []string{schema.HeaderRequestedModel, "llama3"}, schema.CodeBadRequest, "names no provider"},
		{"the provider has no such model", open, []string{schema.HeaderRequestedModel, "openai/gpt-9"}, schema.CodeUnknownTier, `model "gpt-9"`},
	} {
		m := e.request(job(t, tt.w, ask("hi"), tt.hdr...))
		if code := errorCode(t, m); code != tt.code || !strings.Contains(string(m.Data), tt.msg) {
			t.Errorf("%s: %s %s, want %s containing %q", tt.name, code, m.Data, tt.code, tt.msg)
		}
	}
	// A model the provider does not know is the job's fault: however
	// many jobs ask for one, the deployment does not rest.
	for range 5 {
		errorCode(t, e.request(job(t, open, ask("hi"), schema.HeaderRequestedModel, "openai/gpt-9")))
	}
	if hb := e.beat(open); hb.CoolingReason != "" {
		t.Errorf("the deployment rests after jobs asked for unknown models: %q", hb.CoolingReason)
	}
	resp := decodeResponse(t, e.request(job(t, open, ask("hi"), schema.HeaderRequestedModel, "openai/gpt-4o-mini")))
	if resp.Routing.Model != "gpt-4o-mini" {
		t.Errorf("routing %+v", resp.Routing)
	}
}

// beat asks every worker to beat and returns w's heartbeat.
func (e *env) beat(w *worker.Worker) schema.Heartbeat {
	e.t.Helper()
	sub, err := e.nc.SubscribeSync(e.subjects.Heartbeat(w.ID()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := e.nc.Publish(e.subjects.Announce(), nil); err != nil {
		e.t.Fatal(err)
	}
	m, err := sub.NextMsg(wait)
	if err != nil {
		e.t.Fatal(err)
	}
	var hb schema.Heartbeat
	if err := msgpack.Unmarshal(m.Data, &hb); err != nil {
		e.t.Fatal(err)
	}
	return hb
}

// TestWildcard_OtherDeploymentsIgnoreTheHeader: only a wildcard
// deployment lets a job choose what it calls.
func TestWildcard_OtherDeploymentsIgnoreTheHeader(t *testing.T) {
	t.Parallel()
	e := setup(t)
	fake := openaitest.NewServer(t, openaitest.Config{})
	for _, name := range []string{"tier1", "anthropic/claude-*"} {
		w := e.deploymentWorker(oneDeployment(name, "openai/gpt-4o", fake.URL()))
		resp := decodeResponse(t, e.request(job(t, w, ask("hi"), schema.HeaderRequestedModel, "openai/o3-pro")))
		if got := lastModel(t, fake); got != "gpt-4o" || resp.Routing.Model != "gpt-4o" {
			t.Errorf("%s: called %q, routing %+v; want the configured gpt-4o", name, got, resp.Routing)
		}
	}
}

func TestFromDeployment_WildcardModelNeedsAWildcardModelName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ modelName, model, want string }{
		{"tier1", "openai/*", `has a * but model_name "tier1" has none`},
		{"a/*", "openai/*-*", "has more * than model_name"},
		{"openai/*", "openai/*", "api_key"}, // the public endpoint needs a key: found at start
	} {
		cfg, err := config.Parse([]byte("model_list:\n  - model_name: \""+tt.modelName+"\"\n    litellm_params: {model: \""+tt.model+"\"}\n"),
			func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		_, err = worker.FromDeployment(&cfg.ModelList[0], &cfg.RouterSettings)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s → %s: error %v, want it to say %q", tt.modelName, tt.model, err, tt.want)
		}
	}
}
