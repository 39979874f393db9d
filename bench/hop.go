package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/worker"
)

// proxyTransport is the bare reverse proxy's client: kept-alive
// connections, enough idle ones per host for the gateway section's
// highest concurrency (the default of 2 would redial at every request
// beyond two at once, which measures dialing, not proxying).
func proxyTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
	}
}

// serveProxy serves a bare httputil.ReverseProxy to target (an api_base)
// on a free loopback port: the hop llmq's gateway path is compared with.
func serveProxy(target string) (addr string, stop func(), err error) {
	u, err := url.Parse(rootOf(target))
	if err != nil {
		return "", nil, fmt.Errorf("bench: proxy target: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("bench: proxy: %w", err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: proxyTransport(),
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// inProcessLLMQ is what `llmq up --gateway` runs, assembled from the same
// packages in this process: an embedded NATS server, one in-process
// connection shared by a dispatcher, a worker per deployment and the
// gateway. It serves the gateway section's CPU profile, which the llmq
// binary has no endpoint for.
type inProcessLLMQ struct {
	srv *broker.Embedded
	nc  *nats.Conn
	d   *dispatcher.Dispatcher
	ws  []*worker.Worker
	g   *gateway.Gateway
}

// startInProcessLLMQ starts it from a config file's text.
func startInProcessLLMQ(ctx context.Context, cfgText string) (*inProcessLLMQ, error) {
	cfg, err := config.Parse([]byte(cfgText), os.LookupEnv)
	if err != nil {
		return nil, err
	}
	l := &inProcessLLMQ{}
	fail := func(err error) (*inProcessLLMQ, error) {
		l.stop()
		return nil, err
	}
	if l.srv, err = broker.StartEmbedded(broker.EmbeddedConfig{}); err != nil {
		return nil, err
	}
	if l.nc, err = nats.Connect(l.srv.ClientURL(), l.srv.InProcess(), nats.Name("llmq-up")); err != nil {
		return fail(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	inboxes := &broker.Inboxes{} // as llmq up: the gateway's replies come in process
	subjects := broker.Subjects{}
	var tiers []string
	for t := range cfg.Tiers() {
		tiers = append(tiers, t)
	}
	l.d, err = dispatcher.New(dispatcher.Config{Conn: l.nc, Subjects: subjects, Strategy: cfg.RouterSettings.RoutingStrategy,
		Tiers: tiers, Aliases: cfg.Aliases(), DefaultTimeout: cfg.RouterSettings.Timeout.D(), Logger: quiet})
	if err != nil {
		return fail(err)
	}
	if err := l.d.Start(ctx); err != nil {
		l.d = nil
		return fail(err)
	}
	for i := range cfg.ModelList {
		wc, err := worker.FromDeployment(&cfg.ModelList[i], &cfg.RouterSettings)
		if err != nil {
			return fail(err)
		}
		wc.Conn, wc.Subjects, wc.Logger, wc.Inboxes = l.nc, subjects, quiet, inboxes
		w, err := worker.New(wc)
		if err != nil {
			return fail(err)
		}
		if err := w.Start(ctx); err != nil {
			return fail(err)
		}
		l.ws = append(l.ws, w)
		if err := l.d.AddLocal(w); err != nil { // as llmq up does
			return fail(err)
		}
	}
	l.g, err = gateway.New(gateway.Config{Conn: l.nc, Subjects: subjects, Listen: "127.0.0.1:0", Tiers: tiers,
		Timeout: cfg.RouterSettings.Timeout.D(), Logger: quiet, Dispatcher: l.d, Inboxes: inboxes}) // as llmq up --gateway
	if err != nil {
		return fail(err)
	}
	if err := l.g.Start(ctx); err != nil {
		l.g = nil
		return fail(err)
	}
	return l, nil
}

// url is the gateway's api_base.
func (l *inProcessLLMQ) url() string { return "http://" + l.g.Addr() + "/v1" }

func (l *inProcessLLMQ) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if l.g != nil {
		_ = l.g.Stop(ctx)
	}
	for _, w := range l.ws {
		_ = w.Stop(ctx)
	}
	if l.d != nil {
		_ = l.d.Stop(ctx)
	}
	if l.nc != nil {
		l.nc.Close()
	}
	if l.srv != nil {
		l.srv.Shutdown()
	}
}

// serveProfiler serves POST /profile?ms=N on a free loopback port: a CPU
// profile of this process over the next N ms (runtime/pprof's format).
func serveProfiler() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /profile", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms <= 0 || ms > 600_000 {
			http.Error(w, "ms: want 1 to 600000", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := pprof.StartCPUProfile(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
		pprof.StopCPUProfile()
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// fetchProfile asks a helper's profiler for a CPU profile of d.
func fetchProfile(ctx context.Context, addr string, d time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/profile?ms="+strconv.FormatInt(d.Milliseconds(), 10), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("bench: profile: " + resp.Status + ": " + string(b))
	}
	return b, nil
}
