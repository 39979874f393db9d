package openai_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		opts    provider.Options
		wantErr string // substring; "" = no error
	}{
		{"no model", provider.Options{APIKey: "k"}, "Options.Model"},
		{"default endpoint without key", provider.Options{Model: "gpt-4o"}, "Options.APIKey) is required"},
		{"official endpoint spelled out without key", provider.Options{Model: "gpt-4o", APIBase: "https://API.openai.com/v1/"}, "Options.APIKey) is required"},
		{"not http", provider.Options{Model: "m", APIBase: "ftp://host/v1"}, "Options.APIBase) must be"},
		{"relative", provider.Options{Model: "m", APIBase: "host:8000/v1"}, "Options.APIBase) must be"},
		{"query", provider.Options{Model: "m", APIBase: "http://host/v1?api-version=1"}, "must not have a query"},
		{"default endpoint with key", provider.Options{Model: "gpt-4o", APIKey: "k"}, ""},
		{"self-hosted without key", provider.Options{Model: "qwen", APIBase: "http://gpu-1:8000/v1"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.opts.HTTP = newClient(t)
			p, err := openai.New(c.opts)
			if c.wantErr == "" {
				if err != nil || p == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, c.wantErr)
			}
			if schema.CodeOf(err) != schema.CodeBadRequest {
				t.Errorf("New error code = %q, want bad_request", schema.CodeOf(err))
			}
		})
	}
}

func TestNewAcceptsFullEndpointAsAPIBase(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Config{})
	p, err := openai.New(provider.Options{Model: testModel, APIBase: srv.URL() + "/chat/completions/", HTTP: newClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Complete(context.Background(), userRequest("hi")); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests()[0].Path; got != openaitest.Path {
		t.Fatalf("path = %s, want %s", got, openaitest.Path)
	}
}

func TestNewEndpoint_NamesItsErrorsAndValidates(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Config{Key: testKey})
	h := http.Header{"Authorization": {"Bearer " + testKey}}
	p, err := openai.NewEndpoint(provider.Options{Model: "m", HTTP: newClient(t)},
		openai.Endpoint{Name: "acme", URL: srv.URL() + "/chat/completions", Header: h})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Complete(context.Background(), userRequest("hi")); err != nil {
		t.Fatalf("with the endpoint's credentials: %v", err)
	}
	p, err = openai.NewEndpoint(provider.Options{Model: "m", HTTP: newClient(t)},
		openai.Endpoint{Name: "acme", URL: srv.URL() + "/nowhere", Header: h})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Complete(context.Background(), userRequest("hi"))
	if e := wantError(t, err, schema.CodeNotFound); !strings.HasPrefix(e.Message, "acme: ") {
		t.Errorf("message %q does not start with the endpoint's name", e.Message)
	}
	for name, ep := range map[string]openai.Endpoint{
		"no name":      {URL: srv.URL()},
		"relative URL": {Name: "acme", URL: "/chat/completions"},
	} {
		if _, err := openai.NewEndpoint(provider.Options{Model: "m"}, ep); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := openai.NewEndpoint(provider.Options{}, openai.Endpoint{Name: "acme", URL: srv.URL()}); err == nil {
		t.Error("no model: no error")
	}
}
