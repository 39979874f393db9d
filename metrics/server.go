package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultListen is where a Server listens by default: loopback, on the
// port OpenTelemetry's Prometheus exporter uses.
const DefaultListen = "127.0.0.1:9464"

// ServerConfig configures a Server. The zero value serves a fresh
// Metrics on DefaultListen.
type ServerConfig struct {
	// Listen is the host:port to serve on. Default DefaultListen; port 0
	// picks a free one (see Addr).
	Listen string
	// Metrics to serve on /metrics. Default New(Config{}).
	Metrics *Metrics
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Server serves /metrics over HTTP. Create it with NewServer, run it with
// Start, end it with Stop.
type Server struct {
	cfg  ServerConfig
	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// NewServer returns a server for cfg.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Metrics == nil {
		cfg.Metrics = New(Config{})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg}
}

// Metrics returns the metrics the server serves.
func (s *Server) Metrics() *Metrics { return s.cfg.Metrics }

// Start listens and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("metrics: already started")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("metrics: listen %s: %w", s.cfg.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "llmq metrics: see /metrics")
	})
	s.ln = ln
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("metrics server", "err", err)
		}
	}()
	s.cfg.Logger.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop shuts the server down. Safe to call twice.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
