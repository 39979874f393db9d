package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"golang.org/x/net/netutil"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

// DefaultListen is where a gateway listens by default: loopback only.
const DefaultListen = "127.0.0.1:8080"

// Config configures a Gateway. Only Conn is required.
type Config struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Subjects lays out subjects. Default prefix "llm".
	Subjects broker.Subjects
	// Listen is the HTTP host:port. Default DefaultListen; port 0 picks a
	// free one (see Addr).
	Listen string
	// Keys are the bearer keys clients must send (Authorization: Bearer
	// <key>); general_settings.master_key in a config. None: no key is
	// asked for.
	Keys []string
	// Tiers are listed by GET /v1/models besides the tiers workers announce
	// in their heartbeats (the config's model names). Wildcard tiers
	// ("openai/*") are not listed; a request for a name one matches is
	// known.
	Tiers []string
	// Aliases are other names of tiers (router_settings.model_group_alias),
	// listed unless hidden. Default none.
	Aliases map[string]Alias
	// Timeout bounds a request: its job's deadline. Default 600 s.
	Timeout time.Duration
	// MaxBodyBytes bounds a request body; larger ones get 413. Default
	// 8 MiB (a job must also fit the NATS max payload).
	MaxBodyBytes int64
	// Codec of the jobs sent on NATS. Default msgpack.
	Codec schema.Codec
	// Dispatcher, when set, is a dispatcher in the gateway's own process
	// (llmq up --gateway sets its own): the gateway hands it each job in
	// process instead of publishing the job on NATS,
	// which saves one NATS crossing per request (see Inboxes for the
	// reply). A job it does not take
	// (it is stopping) is published as usual. Default nil: every job is
	// published on NATS, for whichever dispatcher the queue group picks.
	Dispatcher LocalDispatcher
	// Inboxes, when set, are shared with workers in the gateway's process
	// (worker.Config.Inboxes; llmq up sets both): the gateway registers
	// each non-streamed job's inbox there, and such a worker hands the
	// reply over in process instead of publishing it. Replies from other
	// processes still come over NATS. Default nil.
	Inboxes *broker.Inboxes
	// Observer, when set, is told of every chat-completion request (see
	// Observer). Default none.
	Observer Observer
	// NoService leaves out the NATS micro service the gateway registers
	// (ServiceName). Default: registered.
	NoService bool
	// Version is reported to NATS micro: a semantic version, else "0.0.0".
	Version string
	// ReadHeaderTimeout bounds reading a request's headers. Default 10 s;
	// negative: no limit.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included; not the
	// time to answer it (net/http lifts the read deadline once the body is
	// read, to watch for the client going away). Default 60 s; negative: no
	// limit.
	ReadTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. Default 120 s; negative: no limit.
	IdleTimeout time.Duration
	// MaxConnections caps the HTTP connections open at once; further
	// clients wait to be accepted. Default 4096; negative: no cap.
	MaxConnections int
	// MaxWorkers caps the workers the gateway follows from heartbeats, and
	// MaxTiers the tiers it learns from them (besides Tiers); a beat over a
	// cap is dropped and counted (ServiceStats.DroppedBeats). Workers are
	// forgotten three beat intervals after their last beat. Defaults
	// DefaultMaxWorkers (4096) and DefaultMaxTiers (256).
	MaxWorkers, MaxTiers int
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// LocalDispatcher is a dispatcher running in the gateway's process;
// *dispatcher.Dispatcher implements it. It must use the gateway's Conn.
type LocalDispatcher = client.LocalDispatcher

// Observer is told of every chat-completion request; package metrics
// implements it. Methods run on request goroutines: they must be quick and
// safe for concurrent use.
type Observer interface {
	// RequestStarted is called when a request arrives.
	RequestStarted()
	// RequestDone is called once for each RequestStarted, when the
	// response is complete.
	RequestDone(r RequestReport)
}

// RequestReport describes one chat-completion request.
type RequestReport struct {
	// Tier is the model asked for, or "" when the gateway knows no tier of
	// that name (so that made-up names cannot grow a label set).
	Tier   string
	Stream bool
	// Status is the HTTP status sent (499 when the client went away
	// before the answer).
	Status int
	// Code is the llmq error code of a failed request (CodeInvalidKey for
	// one refused for want of a valid key), "" on success.
	Code string
	// Duration is the whole request; TTFT the time to the first streamed
	// chunk (0 for other requests).
	Duration, TTFT time.Duration
	// Routing is the routing block of a successful completion.
	Routing *schema.Routing
}

// Gateway is an OpenAI-compatible HTTP server that turns each request into
// a job on NATS. Create it with New, run it with Start, end it with Stop.
type Gateway struct {
	cfg    Config
	client *client.Client
	log    *slog.Logger
	keys   [][]byte

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	hbSub   *nats.Subscription
	svc     micro.Service
	done    chan struct{}
	started time.Time
	stopped bool
	fleet   *fleet
	subject string // of the micro stats endpoint

	stats  stats
	active sync.WaitGroup // handlers running, waited for by Stop
}

// New validates cfg and returns a gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Conn == nil {
		return nil, errors.New("gateway: Conn is required")
	}
	if cfg.Dispatcher != nil && cfg.Dispatcher.Conn() != cfg.Conn {
		return nil, errors.New("gateway: the in-process Dispatcher must use the gateway's Conn")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 600 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.ReadHeaderTimeout = orDefault(cfg.ReadHeaderTimeout, 10*time.Second)
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, 60*time.Second)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, 120*time.Second)
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = 4096
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = DefaultMaxWorkers
	}
	if cfg.MaxTiers <= 0 {
		cfg.MaxTiers = DefaultMaxTiers
	}
	log := cfg.Logger.With("component", "gateway")
	g := &Gateway{
		cfg:    cfg,
		client: client.New(cfg.Conn, client.Config{Subjects: cfg.Subjects, Codec: cfg.Codec, Timeout: cfg.Timeout, Dispatcher: cfg.Dispatcher}),
		log:    log,
		fleet:  newFleet(cfg.Tiers, cfg.MaxWorkers, cfg.MaxTiers, log),
		stats:  stats{byStatus: map[int]uint64{}},
	}
	for _, k := range cfg.Keys {
		if k == "" {
			return nil, errors.New("gateway: an empty key would let anyone in")
		}
		g.keys = append(g.keys, []byte(k))
	}
	for _, t := range cfg.Tiers {
		if !broker.ValidGroup(t) {
			return nil, fmt.Errorf("gateway: tier %q is not a valid tier name or wildcard pattern", t)
		}
	}
	if err := checkNames(cfg.Aliases); err != nil {
		return nil, err
	}
	return g, nil
}

// Start listens, learns the tiers from heartbeats and serves in the
// background. ctx bounds only the start.
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv != nil || g.stopped {
		return errors.New("gateway: already started")
	}
	hb, err := g.cfg.Conn.Subscribe(g.cfg.Subjects.HeartbeatWildcard(), g.onHeartbeat)
	if err != nil {
		return fmt.Errorf("gateway: subscribe heartbeats: %w", err)
	}
	if err := g.cfg.Conn.Publish(g.cfg.Subjects.Announce(), nil); err != nil {
		_ = hb.Unsubscribe()
		return fmt.Errorf("gateway: announce: %w", err)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", g.cfg.Listen)
	if err != nil {
		_ = hb.Unsubscribe()
		return fmt.Errorf("gateway: listen %s: %w", g.cfg.Listen, err)
	}
	if g.cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, g.cfg.MaxConnections)
	}
	g.hbSub, g.ln, g.started = hb, ln, time.Now()
	if err := g.startService(); err != nil {
		_ = hb.Unsubscribe()
		_ = ln.Close()
		return err
	}
	h := g.Handler()
	g.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.active.Add(1)
			defer g.active.Done()
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: max(g.cfg.ReadHeaderTimeout, 0),
		ReadTimeout:       max(g.cfg.ReadTimeout, 0),
		IdleTimeout:       max(g.cfg.IdleTimeout, 0),
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	g.done = make(chan struct{})
	go func() {
		defer close(g.done)
		if err := g.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("serve", "err", err)
		}
	}()
	g.log.Info("gateway listening", "url", "http://"+ln.Addr().String()+"/v1", "auth", len(g.keys) > 0)
	return nil
}

// Addr returns the host:port the gateway listens on, once started.
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		return ""
	}
	return g.ln.Addr().String()
}

// Stop stops taking requests and waits for those in progress until ctx
// ends, then cuts the rest (their streams end; their jobs are cancelled).
// Safe to call twice.
func (g *Gateway) Stop(ctx context.Context) error {
	g.mu.Lock()
	srv, done, hb := g.srv, g.done, g.hbSub
	first := !g.stopped
	g.stopped = true
	g.mu.Unlock()
	if srv == nil || !first {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, srv.Close()) // cuts the streams still open
	}
	<-done
	g.active.Wait() // a cut handler ends at once: its request's context is done
	_ = hb.Unsubscribe()
	g.stopService()
	// Once Stop returns the server has seen the unsubscriptions: discovery
	// no longer finds the gateway.
	if ferr := broker.Flush(context.WithoutCancel(ctx), g.cfg.Conn); ferr != nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
		err = errors.Join(err, ferr)
	}
	g.log.Info("gateway stopped")
	return err
}

// onHeartbeat keeps the tiers workers serve, for /v1/models and the
// metrics' tier labels. Beats are untrusted: broker.DecodeHeartbeat checks
// and clamps them, and the fleet bounds what they can add.
func (g *Gateway) onHeartbeat(m *nats.Msg) {
	now := time.Now()
	hb, err := g.cfg.Subjects.DecodeHeartbeat(m.Subject, m.Data, now)
	if err != nil {
		g.fleet.drop("malformed", "subject", truncate(m.Subject, 64), "err", err)
		return
	}
	expires := now.Add(3 * time.Duration(hb.IntervalMs) * time.Millisecond)
	if !g.fleet.beat(hb.Worker, hb.Tier, hb.State == schema.StateStopped, now, expires) {
		g.fleet.drop("over the workers or tiers cap", "worker", hb.Worker, "tier", hb.Tier,
			"max_workers", g.cfg.MaxWorkers, "max_tiers", g.cfg.MaxTiers)
	}
}

// tiers returns the tiers the gateway knows, sorted: the configured ones
// and those of workers that beat within their last three intervals.
func (g *Gateway) tiers() []string { return g.fleet.list(time.Now()) }

// known reports whether tier is one the gateway knows: a tier, an alias,
// a name a wildcard tier matches (names.go).
func (g *Gateway) known(tier string) bool {
	return !broker.IsPattern(tier) && g.fleet.known(tier, time.Now()) || g.matchName(tier) != ""
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// truncate cuts s to at most n bytes, for logs and messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
