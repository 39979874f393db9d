package openai_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

const testModel = "gpt-test"

// newClient returns a fresh HTTP client whose idle connections are closed
// when the test ends, so goleak sees no stray goroutines.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	c := provider.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// setup starts a fake and an adapter pointed at it, with the fake's key.
func setup(t *testing.T, cfg openaitest.Config, mod func(*provider.Options)) (*openai.Provider, *openaitest.Server) {
	t.Helper()
	srv := openaitest.NewServer(t, cfg)
	o := provider.Options{Model: testModel, APIBase: srv.URL(), APIKey: cfg.Key, HTTP: newClient(t)}
	if mod != nil {
		mod(&o)
	}
	p, err := openai.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, srv
}

func userRequest(text string) *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}}
}

func intp(n int) *int           { return &n }
func floatp(f float64) *float64 { return &f }
func collect(out *[]string) func(schema.ChunkChoice) error {
	return func(c schema.ChunkChoice) error { d := c.Delta.Content; *out = append(*out, d); return nil }
}

// wantError asserts err is a *schema.Error of the given code and returns it.
func wantError(t *testing.T, err error, code string) *schema.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var e *schema.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not a *schema.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("code = %s, want %s (%v)", e.Code, code, e)
	}
	return e
}

// waitFor fails the test when ch yields nothing for a long while; it is a
// guard against hangs, not a timing assertion.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
