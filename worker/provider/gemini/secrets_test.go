package gemini_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

// TestSecrets checks that the API key appears in no error and no returned
// value, whatever goes wrong, and never in a URL.
func TestSecrets(t *testing.T) {
	t.Parallel()
	const key = "AIzaSy-TOP-SECRET-0123456789"
	echo := geminitest.InvalidArgument("API key not valid: " + key) // a proxy that echoes the key
	cases := map[string]geminitest.Config{
		"ok":              {Key: key},
		"wrong key":       {Key: "another-key"},
		"echoed key":      {Key: key, Fail: echo},
		"rate limited":    {Key: key, Fail: geminitest.RateLimited("3s")},
		"server error":    {Key: key, Fail: geminitest.Internal()},
		"context window":  {Key: key, ContextWindow: 1},
		"unknown model":   {Key: key, Models: []string{"other"}},
		"blocked":         {Key: key, BlockReason: "SAFETY"},
		"mid-stream echo": {Key: key, FailMidStream: &geminitest.MidStream{After: 1, Error: echo}},
		"mid-stream drop": {Key: key, FailMidStream: &geminitest.MidStream{After: 1}},
		"slow":            {Key: key, Delay: time.Minute},
	}
	check := func(t *testing.T, what string, v any, err error) {
		t.Helper()
		if err != nil {
			if strings.Contains(err.Error(), key) {
				t.Errorf("%s: error leaks the key: %v", what, err)
			}
			b, _ := json.Marshal(schema.AsError(err))
			if strings.Contains(string(b), key) {
				t.Errorf("%s: error body leaks the key: %s", what, b)
			}
		}
		b, _ := json.Marshal(v)
		if strings.Contains(string(b), key) {
			t.Errorf("%s: result leaks the key: %s", what, b)
		}
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := geminitest.NewServer(t, cfg)
			p := newProvider(t, srv, func(o *provider.Options) {
				o.APIKey = key
				o.Timeout = 100 * time.Millisecond
			})
			resp, err := p.Complete(context.Background(), userRequest("two words"))
			check(t, "Complete", resp, err)
			deltas, resp, err := collect(t, p, userRequest("two words"))
			check(t, "Stream", resp, err)
			check(t, "Stream deltas", deltas, nil)
			for _, r := range srv.Requests() {
				if strings.Contains(r.Path, key) || strings.Contains(r.Query.Encode(), key) {
					t.Errorf("key sent in the URL: %s?%s", r.Path, r.Query.Encode())
				}
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		srv := geminitest.Start(geminitest.Config{Key: key})
		srv.Close()
		p := newProvider(t, srv, func(o *provider.Options) { o.APIKey = key })
		resp, err := p.Complete(context.Background(), userRequest("x"))
		check(t, "Complete", resp, err)
		_, resp, err = collect(t, p, userRequest("x"))
		check(t, "Stream", resp, err)
	})
}
