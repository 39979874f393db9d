package gemini_test

import (
	"context"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testModel = "gemini-2.0-flash"

// client returns a fresh HTTP client whose idle connections close when the
// test ends, so goleak sees no stray goroutines.
func client(t *testing.T) *http.Client {
	t.Helper()
	c := provider.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// newProvider builds an adapter against srv; edit adjusts the options.
func newProvider(t *testing.T, srv *geminitest.Server, edit ...func(*provider.Options)) *gemini.Provider {
	t.Helper()
	o := provider.Options{Model: testModel, APIBase: srv.URL(), APIKey: srv.Key(), HTTP: client(t)}
	for _, f := range edit {
		f(&o)
	}
	p, err := gemini.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func userRequest(text string) *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}}
}

// collect streams req and returns the deltas emit saw.
func collect(t *testing.T, p *gemini.Provider, req *schema.Request) ([]string, *schema.Response, error) {
	t.Helper()
	var deltas []string
	resp, err := p.Stream(context.Background(), req, func(c schema.ChunkChoice) error {
		d := c.Delta.Content
		deltas = append(deltas, d)
		return nil
	})
	return deltas, resp, err
}

// wantCode fails unless err is a *schema.Error with the given code.
func wantCode(t *testing.T, err error, code string) *schema.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := schema.CodeOf(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
	return schema.AsError(err)
}

func ptr[T any](v T) *T { return &v }
