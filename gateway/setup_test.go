package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

// wait is the generous bound on any event a test waits for.
const wait = 20 * time.Second

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// env is a NATS server with a dispatcher and a gateway in front of it.
type env struct {
	t        *testing.T
	srv      *brokertest.Server
	subjects broker.Subjects
	nc       *nats.Conn
	d        *dispatcher.Dispatcher
	g        *gateway.Gateway
	base     string // http://host:port
	http     *http.Client
	rec      *recorder
}

// setup starts a dispatcher (configured by dc, serving tier1 besides
// dc.Tiers) and a gateway (gc) on a free loopback port.
func setup(t *testing.T, gc gateway.Config, dc dispatcher.Config) *env {
	t.Helper()
	srv := brokertest.NewServer(t, brokertest.Options{})
	e := &env{t: t, srv: srv, subjects: brokertest.Subjects(t), rec: &recorder{}}
	e.nc = srv.Connect("test")
	e.startDispatcher(dc)
	e.startGateway(gc)
	return e
}

// alone starts a gateway with no dispatcher behind it: jobs get 503
// no_deployments.
func alone(t *testing.T, gc gateway.Config) *env {
	t.Helper()
	srv := brokertest.NewServer(t, brokertest.Options{})
	e := &env{t: t, srv: srv, subjects: brokertest.Subjects(t), rec: &recorder{}}
	e.nc = srv.Connect("test")
	e.startGateway(gc)
	return e
}

func (e *env) startDispatcher(dc dispatcher.Config) {
	t, srv := e.t, e.srv
	t.Helper()
	dc.Conn, dc.Subjects, dc.Logger = srv.Connect("dispatcher"), e.subjects, quiet()
	dc.Tiers = append(dc.Tiers, "tier1")
	d, err := dispatcher.New(dc)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	e.d = d
}

func (e *env) startGateway(gc gateway.Config) {
	t, srv := e.t, e.srv
	t.Helper()
	if gc.Conn == nil {
		gc.Conn = srv.Connect("gateway")
	}
	gc.Subjects, gc.Logger, gc.Listen = e.subjects, quiet(), "127.0.0.1:0"
	if gc.Observer == nil {
		gc.Observer = e.rec
	}
	g, err := gateway.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.g, e.base = g, "http://"+g.Addr()
	tr := &http.Transport{}
	e.http = &http.Client{Transport: tr, Timeout: wait}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := g.Stop(ctx); err != nil {
			t.Errorf("gateway stop: %v", err)
		}
	})
}

// worker starts a worker of tier, stopped when the test ends.
func (e *env) worker(tier, deployment string, capacity int, p provider.Provider, mod ...func(*worker.Config)) *worker.Worker {
	e.t.Helper()
	cfg := worker.Config{
		Conn: e.srv.Connect("worker-" + deployment), Subjects: e.subjects, Tier: tier, Deployment: deployment,
		Provider: p, ProviderName: "test", Model: "m-" + deployment, Concurrency: capacity,
		HeartbeatInterval: 100 * time.Millisecond, Logger: quiet(), Cooldown: worker.Cooldown{Disabled: true},
	}
	for _, m := range mod {
		m(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = w.Stop(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := e.d.WaitWorkers(ctx, tier, 1); err != nil {
		e.t.Fatal(err)
	}
	return w
}

// do sends an HTTP request; hdr are pairs of header name and value.
func (e *env) do(method, path, body string, hdr ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (e *env) post(body string, hdr ...string) *http.Response {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/chat/completions", body, hdr...)
}

// chat is a request body for model.
func chat(model, prompt string, extra ...string) string {
	return `{"model":"` + model + `","messages":[{"role":"user","content":"` + prompt + `"}]` + strings.Join(extra, "") + `}`
}

// openAIError is OpenAI's error body.
type openAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

// wantError checks an error response: status, JSON body of OpenAI's shape
// with type and code, and the Llmq-Error-Code header when llmqCode is set.
func wantError(t *testing.T, resp *http.Response, status int, typ, code, llmqCode string) openAIError {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e openAIError
	var raw map[string]map[string]any
	if err := json.Unmarshal(body, &e); err != nil || json.Unmarshal(body, &raw) != nil {
		t.Fatalf("body is not an OpenAI error: %v: %s", err, body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := raw["error"][k]; !ok {
			t.Errorf("error object lacks %q: %s", k, body)
		}
	}
	if e.Error.Type != typ || e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("error %+v, want type %q code %q", e.Error, typ, code)
	}
	if llmqCode != "" && resp.Header.Get(gateway.HeaderErrorCode) != llmqCode {
		t.Errorf("%s = %q, want %q", gateway.HeaderErrorCode, resp.Header.Get(gateway.HeaderErrorCode), llmqCode)
	}
	return e
}

// sse reads a server-sent events body: the data of each event, in order.
// It fails on any line that is not "data: ..." or the blank line ending an
// event.
func sse(t *testing.T, body io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	expectBlank := false
	for sc.Scan() {
		line := sc.Text()
		if expectBlank {
			if line != "" {
				t.Fatalf("event not ended by a blank line: %q", line)
			}
			expectBlank = false
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not a data line", line)
		}
		out = append(out, data)
		expectBlank = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if expectBlank {
		t.Fatalf("last event %q not ended by a blank line", out[len(out)-1])
	}
	return out
}

// recorder is a gateway.Observer keeping its reports.
type recorder struct {
	mu      sync.Mutex
	started int
	reports []gateway.RequestReport
}

func (r *recorder) RequestStarted() {
	r.mu.Lock()
	r.started++
	r.mu.Unlock()
}

func (r *recorder) RequestDone(rep gateway.RequestReport) {
	r.mu.Lock()
	r.reports = append(r.reports, rep)
	r.mu.Unlock()
}

// await polls until n requests are reported: a request is reported after
// its response is written, so the client can be first.
func (r *recorder) await(t *testing.T, n int) []gateway.RequestReport {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		r.mu.Lock()
		got := append([]gateway.RequestReport(nil), r.reports...)
		started := r.started
		r.mu.Unlock()
		if len(got) >= n {
			if started != len(got) {
				t.Fatalf("%d started, %d done", started, len(got))
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests reported", len(got), n)
		}
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
}

// echo answers at once with the prompt, 1 prompt and 2 completion tokens.
func echo() provider.Func {
	return func(_ context.Context, req *schema.Request) (*schema.Response, error) {
		return &schema.Response{
			Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: "echo: " + req.Messages[len(req.Messages)-1].Content}, FinishReason: schema.FinishStop}},
			Usage:   schema.Usage{PromptTokens: 1, CompletionTokens: 2},
		}, nil
	}
}

// failing always fails with e.
func failing(e *schema.Error) provider.Func {
	return func(context.Context, *schema.Request) (*schema.Response, error) {
		c := *e
		return nil, &c
	}
}

// words streams the given pieces, then (when fail is set) fails.
type words struct {
	pieces []string
	fail   *schema.Error
	// block, when set, makes the stream wait after its pieces until its
	// ctx ends, and then receive the ctx's error.
	block chan error
}

func (p *words) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	return p.Stream(ctx, req, func(schema.ChunkChoice) error { return nil })
}

func (p *words) Stream(ctx context.Context, _ *schema.Request, emit provider.Emit) (*schema.Response, error) {
	for _, s := range p.pieces {
		if err := emit(provider.Text(s)); err != nil {
			return nil, err
		}
	}
	if p.block != nil {
		<-ctx.Done()
		p.block <- ctx.Err()
		return nil, provider.TransportError(ctx, ctx.Err())
	}
	if p.fail != nil {
		return nil, p.fail
	}
	return &schema.Response{
		Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: schema.Content(strings.Join(p.pieces, ""))}, FinishReason: schema.FinishStop}},
		Usage:   schema.Usage{PromptTokens: 3, CompletionTokens: len(p.pieces)},
	}, nil
}

// gate blocks each call until released or its ctx ends.
type gate struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{started: make(chan struct{}, 64), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func (g *gate) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	g.started <- struct{}{}
	select {
	case <-g.release:
		return echo()(ctx, req)
	case <-ctx.Done():
		return nil, provider.TransportError(ctx, ctx.Err())
	}
}

func (g *gate) awaitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-g.started:
	case <-time.After(wait):
		t.Fatal("the provider call never started")
	}
}
