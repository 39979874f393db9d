// Package brokertest starts real NATS servers for tests: one in-process
// server per test on a random loopback port, with its store in the test's
// temporary directory, shut down when the test ends.
package brokertest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/llmq/llmq/broker"
)

// Server is a NATS server for one test.
type Server struct {
	*broker.Embedded
	tb testing.TB
}

// Options tune a test server.
type Options struct {
	// JetStream enables JetStream, stored in tb.TempDir().
	JetStream bool
	// MaxPayload in bytes; default the server's 1 MiB.
	MaxPayload int32
}

// NewServer starts a server listening on 127.0.0.1 at a random port.
func NewServer(tb testing.TB, o Options) *Server {
	tb.Helper()
	ec := broker.EmbeddedConfig{Listen: "127.0.0.1:-1", MaxPayload: o.MaxPayload}
	if o.JetStream {
		ec.JetStream, ec.StoreDir = true, tb.TempDir()
	}
	e, err := broker.StartEmbedded(ec)
	if err != nil {
		tb.Fatalf("start nats: %v", err)
	}
	tb.Cleanup(e.Shutdown)
	return &Server{Embedded: e, tb: tb}
}

// Connect returns a TCP connection to the server, closed when the test
// ends.
func (s *Server) Connect(name string) *nats.Conn {
	s.tb.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(name), nats.Timeout(5*time.Second), nats.MaxReconnects(-1))
	if err != nil {
		s.tb.Fatalf("connect nats: %v", err)
	}
	s.tb.Cleanup(nc.Close)
	return nc
}

// Subjects returns a subject layout with a prefix unique to this test, so
// tests sharing a server cannot see each other's traffic.
func Subjects(tb testing.TB) broker.Subjects {
	return broker.Subjects{Prefix: "t_" + nuid.Next()}
}
