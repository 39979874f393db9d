package azure_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/azure"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	deployment = "gpt4o-prod"
	testKey    = "azure-key-0123456789abcdef"
	testToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra.token"
)

func newClient(t *testing.T) *http.Client {
	t.Helper()
	c := provider.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// setup starts an Azure fake that wants testKey for deployment and an
// adapter pointed at it; mod adjusts the adapter's options.
func setup(t *testing.T, cfg openaitest.Config, mod func(*provider.Options, *azure.Options)) (*openai.Provider, *openaitest.Server) {
	t.Helper()
	if cfg.Azure == nil {
		cfg.Azure = &openaitest.Azure{Deployment: deployment}
	}
	srv := openaitest.NewServer(t, cfg)
	o := provider.Options{Model: deployment, APIBase: srv.URL(), APIKey: testKey, HTTP: newClient(t)}
	var az azure.Options
	if mod != nil {
		mod(&o, &az)
	}
	p, err := azure.New(o, az)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, srv
}

func userRequest(text string) *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}}
}

func wantError(t *testing.T, err error, code string) *schema.Error {
	t.Helper()
	var e *schema.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not a *schema.Error (want %s)", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s, want %s (%v)", e.Code, code, e)
	}
	return e
}

func TestComplete_SendsAzurePathVersionAndAPIKey(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Key: testKey, Reply: "hello from azure"}, nil)
	resp, err := p.Complete(context.Background(), userRequest("hi there"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Text(); got != "hello from azure" {
		t.Errorf("text = %q", got)
	}
	if resp.Model != "gpt-4o-2024-08-06" || resp.Usage.PromptTokens != 2 || resp.Usage.CompletionTokens != 3 ||
		resp.Choices[0].FinishReason != schema.FinishStop {
		t.Errorf("response = %+v", resp)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Path != openaitest.AzurePath(deployment) {
		t.Errorf("path = %q", r.Path)
	}
	if r.Header.Get("Api-Key") != testKey || r.Header.Get("Authorization") != "" {
		t.Errorf("credentials: api-key %q, authorization %q", r.Header.Get("Api-Key"), r.Header.Get("Authorization"))
	}
	if r.Body["model"] != deployment {
		t.Errorf("body model = %v", r.Body["model"])
	}
}

func TestComplete_APIVersion(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ set, want string }{{"", azure.DefaultAPIVersion}, {"2025-01-01-preview", "2025-01-01-preview"}} {
		cfg := openaitest.Config{Key: testKey, Azure: &openaitest.Azure{Deployment: deployment,
			APIVersions: []string{c.want}}}
		p, srv := setup(t, cfg, func(_ *provider.Options, az *azure.Options) { az.APIVersion = c.set })
		if _, err := p.Complete(context.Background(), userRequest("hi")); err != nil {
			t.Fatalf("api_version %q: %v", c.set, err)
		}
		if n := len(srv.Requests()); n != 1 {
			t.Fatalf("%d requests", n)
		}
	}
}

func TestStream_ReadsAzureChunks(t *testing.T) {
	t.Parallel()
	p, _ := setup(t, openaitest.Config{Key: testKey, Reply: "one two three"}, nil)
	var pieces []string
	resp, err := p.Stream(context.Background(), userRequest("a b"), func(c schema.ChunkChoice) error {
		d := c.Delta.Content
		pieces = append(pieces, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pieces, "") != "one two three" || len(pieces) != 3 {
		t.Errorf("pieces = %q", pieces)
	}
	if resp.Text() != "one two three" || resp.Usage.PromptTokens != 2 || resp.Usage.CompletionTokens != 3 ||
		resp.Model != "gpt-4o-2024-08-06" || !strings.HasPrefix(resp.ID, "chatcmpl-fake") {
		t.Errorf("response = %+v", resp)
	}
}

func TestADToken_SentAsBearer(t *testing.T) {
	t.Parallel()
	cfg := openaitest.Config{Azure: &openaitest.Azure{Deployment: deployment, ADToken: testToken}}
	p, srv := setup(t, cfg, func(o *provider.Options, az *azure.Options) { o.APIKey, az.ADToken = "", testToken })
	if _, err := p.Complete(context.Background(), userRequest("hi")); err != nil {
		t.Fatal(err)
	}
	h := srv.Requests()[0].Header
	if h.Get("Authorization") != "Bearer "+testToken || h.Get("Api-Key") != "" {
		t.Errorf("credentials: authorization %q, api-key %q", h.Get("Authorization"), h.Get("Api-Key"))
	}
}

func TestKeyWinsOverToken(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Key: testKey}, func(_ *provider.Options, az *azure.Options) { az.ADToken = testToken })
	if _, err := p.Complete(context.Background(), userRequest("hi")); err != nil {
		t.Fatal(err)
	}
	if h := srv.Requests()[0].Header; h.Get("Api-Key") != testKey || h.Get("Authorization") != "" {
		t.Errorf("headers %v", h)
	}
}

// Each failure is typed with the codes every other adapter uses.
func TestErrors(t *testing.T) {
	t.Parallel()
	fail := func(f openaitest.Failure) openaitest.Config { return openaitest.Config{Key: testKey, Fail: &f} }
	cases := []struct {
		name       string
		cfg        openaitest.Config
		mod        func(*provider.Options, *azure.Options)
		prompt     string
		code       string
		status     int
		retryAfter time.Duration
		inMessage  string
	}{
		{name: "wrong key", cfg: openaitest.Config{Key: testKey},
			mod:  func(o *provider.Options, _ *azure.Options) { o.APIKey = "azure-other-key-000000" },
			code: schema.CodeAuthentication, status: 401, inMessage: "invalid subscription key"},
		{name: "token where the resource wants a key", cfg: openaitest.Config{Key: testKey},
			mod:  func(o *provider.Options, az *azure.Options) { o.APIKey, az.ADToken = "", testToken },
			code: schema.CodeAuthentication, status: 401, inMessage: "Access token"},
		{name: "unknown deployment", cfg: openaitest.Config{Key: testKey},
			mod:  func(o *provider.Options, _ *azure.Options) { o.Model = "no-such-deployment" },
			code: schema.CodeNotFound, status: 404, inMessage: "DeploymentNotFound"},
		{name: "api-version the resource does not know", cfg: openaitest.Config{Key: testKey},
			mod:  func(_ *provider.Options, az *azure.Options) { az.APIVersion = "2023-01-01" },
			code: schema.CodeNotFound, status: 404, inMessage: "Resource not found"},
		{name: "context window", cfg: openaitest.Config{Key: testKey, ContextWindow: 3}, prompt: "one two three four",
			code: schema.CodeContextWindowExceeded, status: 400, inMessage: "maximum context length"},
		{name: "content filter", cfg: fail(openaitest.ContentFilter()),
			code: schema.CodeContentPolicy, status: 400, inMessage: "content_filter"},
		{name: "rate limited", cfg: fail(openaitest.AzureRateLimited(6 * time.Second)),
			code: schema.CodeRateLimited, status: 429, retryAfter: 6 * time.Second},
		{name: "bad request", cfg: fail(openaitest.BadRequest("Invalid value for 'temperature'.", "temperature")),
			code: schema.CodeBadRequest, status: 400, inMessage: "temperature"},
		{name: "server error", cfg: fail(openaitest.ServerError(500)), code: schema.CodeProviderError, status: 500},
		{name: "unavailable", cfg: fail(openaitest.ServerError(503)), code: schema.CodeProviderError, status: 503},
	}
	for _, c := range cases {
		for _, stream := range []bool{false, true} {
			name := c.name + "/complete"
			if stream {
				name = c.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				p, _ := setup(t, c.cfg, c.mod)
				prompt := c.prompt
				if prompt == "" {
					prompt = "hi"
				}
				var err error
				if stream {
					_, err = p.Stream(context.Background(), userRequest(prompt), func(schema.ChunkChoice) error { return nil })
				} else {
					_, err = p.Complete(context.Background(), userRequest(prompt))
				}
				e := wantError(t, err, c.code)
				if e.ProviderStatus != c.status {
					t.Errorf("provider status = %d, want %d", e.ProviderStatus, c.status)
				}
				if c.retryAfter > 0 && e.RetryAfter() != c.retryAfter {
					t.Errorf("retry after = %v, want %v", e.RetryAfter(), c.retryAfter)
				}
				if !strings.HasPrefix(e.Message, "azure: ") || !strings.Contains(e.Message, c.inMessage) {
					t.Errorf("message %q: want the azure: prefix and %q", e.Message, c.inMessage)
				}
				for _, secret := range []string{testKey, testToken, "azure-other-key-000000"} {
					if strings.Contains(e.Message, secret) {
						t.Errorf("message %q holds a credential", e.Message)
					}
				}
			})
		}
	}
}

// Azure's 429 says how long to wait in its message too; without the
// header the message gives the hint.
func TestRateLimitHintFromMessage(t *testing.T) {
	t.Parallel()
	f := openaitest.AzureRateLimited(7 * time.Second)
	f.Header = nil
	p, _ := setup(t, openaitest.Config{Key: testKey, Fail: &f}, nil)
	_, err := p.Complete(context.Background(), userRequest("hi"))
	if e := wantError(t, err, schema.CodeRateLimited); e.RetryAfter() != 7*time.Second {
		t.Errorf("retry after = %v, want 7s from the message", e.RetryAfter())
	}
}

// A proxy that echoes the request's headers in its error must not leak
// the credentials.
func TestCredentialsRedacted(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, secret string
		mod          func(*provider.Options, *azure.Options)
	}{
		{"key", testKey, nil},
		{"token", testToken, func(o *provider.Options, az *azure.Options) { o.APIKey, az.ADToken = "", testToken }},
	} {
		echo := openaitest.Failure{Status: http.StatusBadGateway,
			Body: map[string]any{"error": map[string]any{"message": "upstream rejected api-key " + testKey + " and Bearer " + testToken}}}
		cfg := openaitest.Config{Fail: &echo, Azure: &openaitest.Azure{Deployment: deployment}}
		p, _ := setup(t, cfg, c.mod)
		_, err := p.Complete(context.Background(), userRequest("hi"))
		e := wantError(t, err, schema.CodeProviderError)
		if strings.Contains(e.Message, c.secret) || !strings.Contains(e.Message, "[redacted]") {
			t.Errorf("%s: message %q", c.name, e.Message)
		}
	}
}

func TestNew_RejectsBadOptionsWithoutEchoingSecrets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		o    provider.Options
		az   azure.Options
		want string
	}{
		{"no api_base", provider.Options{Model: deployment, APIKey: testKey}, azure.Options{}, "AZURE_API_BASE"},
		{"not a URL", provider.Options{Model: deployment, APIKey: testKey, APIBase: "x.openai.azure.com"}, azure.Options{}, "absolute"},
		{"whole URL given", provider.Options{Model: deployment, APIKey: testKey,
			APIBase: "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"}, azure.Options{}, "resource's endpoint"},
		{"query in base", provider.Options{Model: deployment, APIKey: testKey, APIBase: "https://x.openai.azure.com/?key=" + testKey}, azure.Options{}, "https://x.openai.azure.com"},
		{"no deployment", provider.Options{APIKey: testKey, APIBase: "https://x.openai.azure.com"}, azure.Options{}, "azure/<deployment>"},
		{"no credential", provider.Options{Model: deployment, APIBase: "https://x.openai.azure.com"}, azure.Options{}, "AZURE_API_KEY"},
	}
	for _, c := range cases {
		_, err := azure.New(c.o, c.az)
		e := wantError(t, err, schema.CodeBadRequest)
		if !strings.Contains(e.Message, c.want) || strings.Contains(e.Message, testKey) {
			t.Errorf("%s: message %q, want %q and no key", c.name, e.Message, c.want)
		}
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	got, err := azure.URL("https://res.openai.azure.com/", "gpt-4o", "")
	if want := "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=" + azure.DefaultAPIVersion; err != nil || got != want {
		t.Errorf("URL = %q, %v; want %q", got, err, want)
	}
	got, err = azure.URL("https://gw.example.com/aoai", "d", "2025-01-01-preview")
	if want := "https://gw.example.com/aoai/openai/deployments/d/chat/completions?api-version=2025-01-01-preview"; err != nil || got != want {
		t.Errorf("gateway URL = %q, %v; want %q", got, err, want)
	}
}
