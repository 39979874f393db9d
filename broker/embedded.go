package broker

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures an in-process NATS server. The zero value
// listens on a random loopback port with JetStream off.
type EmbeddedConfig struct {
	// Listen is host:port. Default "127.0.0.1:-1" (a random port). Use
	// "127.0.0.1:4222" for the standard port.
	Listen string
	// NoListen serves in-process connections only (no TCP).
	NoListen bool
	// JetStream enables JetStream, storing in StoreDir.
	JetStream bool
	// StoreDir for JetStream. Required with JetStream.
	StoreDir string
	// ServerName. Default: chosen by the server.
	ServerName string
	// MaxPayload in bytes. Default 1 MiB (the server's).
	MaxPayload int32
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default 10 s.
	ReadyTimeout time.Duration
}

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server in this process and waits until it
// accepts connections.
func StartEmbedded(c EmbeddedConfig) (*Embedded, error) {
	opts := &server.Options{
		ServerName: c.ServerName,
		JetStream:  c.JetStream,
		StoreDir:   c.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: c.MaxPayload,
	}
	if c.JetStream && c.StoreDir == "" {
		return nil, errors.New("embedded nats: JetStream needs a StoreDir")
	}
	if c.NoListen {
		opts.DontListen = true
	} else {
		listen := c.Listen
		if listen == "" {
			listen = "127.0.0.1:-1"
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen %q: %w", listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen %q: bad port", listen)
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	timeout := c.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: not ready after %s (is %s in use?)", timeout, c.Listen)
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL is the URL clients connect to ("" with NoListen).
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Server returns the underlying server.
func (e *Embedded) Server() *server.Server { return e.srv }

// InProcess is a connect option that connects to this server without TCP.
func (e *Embedded) InProcess() nats.Option { return nats.InProcessServer(e.srv) }

// Shutdown stops the server and waits for it. Safe to call twice.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
