package openai_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

func TestKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	const secret = "sk-proj-TOPSECRET-abcdefghijklmnop0123"
	echoed := openaitest.BadRequest("proxy refused Authorization: Bearer "+secret, "")
	echoedInStream := openaitest.NewAPIError("upstream said "+secret, "server_error", "", "")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/v1"
	l.Close()

	cases := []struct {
		name    string
		cfg     openaitest.Config
		apiBase string // overrides the fake's
		opts    func(*provider.Options)
	}{
		{name: "success", cfg: openaitest.Config{Key: secret}},
		{name: "key refused", cfg: openaitest.Config{Key: "sk-the-right-one-999999999"}},
		{name: "key echoed in an error body", cfg: openaitest.Config{Key: secret, Fail: &echoed}},
		{name: "key echoed in a stream error", cfg: openaitest.Config{Key: secret,
			StreamFault: &openaitest.StreamFault{AfterChunks: 1, Error: &echoedInStream}}},
		{name: "rate limited", cfg: openaitest.Config{Key: secret, Fail: ptr(openaitest.RateLimited(time.Second))}},
		{name: "timeout", cfg: openaitest.Config{Key: secret, Delay: time.Hour,
			StreamFault: &openaitest.StreamFault{Hang: true}},
			opts: func(o *provider.Options) { o.Timeout = 30 * time.Millisecond }},
		{name: "connection refused", cfg: openaitest.Config{}, apiBase: refused},
	}
	for _, c := range cases {
		for mode, run := range modes {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				p, _ := setup(t, c.cfg, func(o *provider.Options) {
					o.APIKey = secret
					if c.apiBase != "" {
						o.APIBase = c.apiBase
					}
					if c.opts != nil {
						c.opts(o)
					}
				})
				resp, err := run(p, context.Background(), userRequest("hello"))
				var seen []string
				if err != nil {
					seen = append(seen, err.Error(), fmt.Sprintf("%+v", err))
					b, _ := json.Marshal(schema.AsError(err))
					seen = append(seen, string(b))
				}
				if resp != nil {
					b, _ := json.Marshal(resp)
					seen = append(seen, string(b))
				}
				if c.name == "success" && err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				for _, s := range seen {
					if strings.Contains(s, secret) {
						t.Errorf("key leaked: %s", s)
					}
				}
			})
		}
	}
	// Construction errors do not print the key either.
	if _, err := openai.New(provider.Options{Model: "m", APIKey: secret, APIBase: "ftp://x"}); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("New error = %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
