package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/llmq/llmq/broker"
)

// ServiceName is the NATS micro service name gateways register under
// (`nats micro info llmq-gateway`).
const ServiceName = "llmq-gateway"

// stats counts the gateway's requests, for its micro service.
type stats struct {
	mu       sync.Mutex
	requests uint64
	inFlight int
	byStatus map[int]uint64
}

func (s *stats) started() {
	s.mu.Lock()
	s.requests++
	s.inFlight++
	s.mu.Unlock()
}

func (s *stats) finished(status int) {
	s.mu.Lock()
	s.inFlight--
	s.byStatus[status]++
	s.mu.Unlock()
}

// ServiceStats is what a gateway's micro "stats" endpoint answers, and the
// data of its STATS reply.
type ServiceStats struct {
	// URL is the gateway's base URL (http://host:port/v1).
	URL string `json:"url"`
	// Requests counts chat-completion requests; ByStatus splits the
	// finished ones by HTTP status.
	Requests uint64            `json:"requests"`
	InFlight int               `json:"in_flight"`
	ByStatus map[string]uint64 `json:"by_status"`
	Tiers    []string          `json:"tiers"`
	// Workers counts the workers followed from heartbeats; DroppedBeats
	// the heartbeats refused (malformed, or over the MaxWorkers or
	// MaxTiers cap).
	Workers      int    `json:"workers"`
	DroppedBeats uint64 `json:"dropped_beats"`
}

// ServiceStats returns the gateway's counters.
func (g *Gateway) ServiceStats() ServiceStats {
	g.stats.mu.Lock()
	s := ServiceStats{Requests: g.stats.requests, InFlight: g.stats.inFlight, ByStatus: map[string]uint64{}}
	for k, v := range g.stats.byStatus {
		s.ByStatus[strconv.Itoa(k)] = v
	}
	g.stats.mu.Unlock()
	if a := g.Addr(); a != "" {
		s.URL = "http://" + a + "/v1"
	}
	s.Tiers = g.tiers()
	s.Workers, s.DroppedBeats = g.fleet.size(), g.fleet.dropped.Load()
	return s
}

// ServiceSubject returns the subject of the gateway's micro "stats"
// endpoint, which answers its ServiceStats as JSON: <prefix>.ctl.gateway.
// g<port>.stats, once started.
func (g *Gateway) ServiceSubject() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.subject
}

// startService registers the gateway with NATS micro. Called with g.mu
// held, after the listener is open. Its handlers wait for Start to end
// (ServiceStats takes g.mu).
func (g *Gateway) startService() error {
	addr := g.ln.Addr().String()
	prefix := g.cfg.Subjects.Name()
	g.subject = prefix + ".ctl.gateway.g" + addr[strings.LastIndex(addr, ":")+1:] + ".stats"
	if g.cfg.NoService {
		return nil
	}
	version, build := broker.ServiceVersion(g.cfg.Version)
	url := "http://" + addr + "/v1"
	svc, err := micro.AddService(g.cfg.Conn, micro.Config{
		Name:         ServiceName,
		Version:      version,
		Description:  "llmq OpenAI-compatible HTTP gateway at " + url,
		Metadata:     map[string]string{"prefix": prefix, "url": url, "auth": strconv.FormatBool(len(g.keys) > 0), "build": build},
		StatsHandler: func(*micro.Endpoint) any { return g.ServiceStats() },
	})
	if err != nil {
		return fmt.Errorf("gateway: micro service: %w", err)
	}
	handler := micro.HandlerFunc(func(r micro.Request) {
		b, _ := json.Marshal(g.ServiceStats())
		_ = r.Respond(b)
	})
	if err := svc.AddEndpoint("stats", handler, micro.WithEndpointSubject(g.subject), micro.WithEndpointQueueGroupDisabled()); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("gateway: micro endpoint: %w", err)
	}
	g.svc = svc
	return nil
}

func (g *Gateway) stopService() {
	g.mu.Lock()
	svc := g.svc
	g.mu.Unlock()
	if svc != nil {
		if err := svc.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			g.log.Debug("micro service stop", "err", err)
		}
	}
}
