package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultURL is used when neither --nats nor NATS_URL is set, as the nats
// CLI does.
const DefaultURL = "nats://127.0.0.1:4222"

// ConnectConfig says how to reach NATS. The zero value connects to
// NATS_URL, else DefaultURL.
type ConnectConfig struct {
	// URLs, comma-separated or several; a cluster's seed servers. Default:
	// $NATS_URL, then DefaultURL.
	URLs []string
	// Name of the connection, shown by the server. Default "llmq".
	Name string
	// CredsFile is a NATS credentials file (JWT + nkey seed).
	CredsFile string
	// NKeyFile is an nkey seed file.
	NKeyFile string
	// User and Password, or Token, authenticate without credentials.
	User, Password, Token string
	// TLSCert, TLSKey (client certificate), TLSCA (server CA) enable TLS.
	TLSCert, TLSKey, TLSCA string
	// TLSFirst performs the TLS handshake before the NATS INFO.
	TLSFirst bool
	// ConnectTimeout of each dial. Default 5 s.
	ConnectTimeout time.Duration
	// PingInterval is how often the client pings the server, and
	// MaxPingsOut how many pings may go unanswered before the connection
	// is taken as dead and replaced by one to another server. nats.go's
	// defaults (2 min, 2) leave a connection to a frozen node (a network
	// partition, a SIGSTOPped server) open for minutes while everything
	// sent over it is lost. Defaults 1 s and 2: a dead server is given up
	// within about 2-3 s. (Measured on a 3-node cluster with a node frozen
	// for 15 s under load, TestCluster_FrozenNode: 2 s pings kept 80% of
	// the jobs, 1 s pings 95%.) A ping is a few bytes a second per
	// connection.
	PingInterval time.Duration
	MaxPingsOut  int
	// InboxPrefix replaces nats.go's "_INBOX" as the prefix of the
	// connection's reply subjects, so a server can let each user read only
	// its own replies (subscribe allow "<InboxPrefix>.>"). Default "_INBOX".
	InboxPrefix string
	// OnClosed is called once when the connection is closed for good:
	// by Close, or by nats.go giving up (the server refused the client, or
	// reconnecting failed). err is the reason (nil after Close). Long-running
	// commands exit on it so a supervisor restarts them; a process must
	// never keep running without its connection. Default: only a log line.
	OnClosed func(err error)
	// Logger receives connection events. Default slog.Default().
	Logger *slog.Logger
	// Options are appended last, e.g. nats.InProcessServer in tests.
	Options []nats.Option
}

// URL returns the servers to connect to, as one comma-separated string.
func (c ConnectConfig) URL() string {
	var urls []string
	for _, u := range c.URLs {
		for _, part := range strings.Split(u, ",") {
			if part = strings.TrimSpace(part); part != "" {
				urls = append(urls, part)
			}
		}
	}
	if len(urls) == 0 {
		if env := os.Getenv("NATS_URL"); env != "" {
			return env
		}
		return DefaultURL
	}
	return strings.Join(urls, ",")
}

// Connect dials NATS. It reconnects forever once connected: a worker or
// dispatcher outlives a NATS restart or a cluster node's loss.
func Connect(ctx context.Context, c ConnectConfig) (*nats.Conn, error) {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	name := c.Name
	if name == "" {
		name = "llmq"
	}
	timeout := c.ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ping := c.PingInterval
	if ping <= 0 {
		ping = time.Second
	}
	pingsOut := c.MaxPingsOut
	if pingsOut <= 0 {
		pingsOut = 2
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.PingInterval(ping),
		nats.MaxPingsOutstanding(pingsOut),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			// LastError may be a stale, transient error (a refused
			// publish) on a connection our own Close ended: say only what
			// is known; OnClosed decides what it means.
			err := nc.LastError()
			log.Debug("nats connection closed", "last_error", err)
			if c.OnClosed != nil {
				c.OnClosed(err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats error", "subject", subject, "err", err)
		}),
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey %s: %w", c.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSFirst {
		opts = append(opts, nats.TLSHandshakeFirst())
	}
	opts = append(opts, c.Options...)

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(c.URL(), opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to nats %s: %w", redact(c.URL()), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to nats %s: %w", redact(c.URL()), errors.Join(ctx.Err()))
	}
}

// redact hides passwords in URLs like nats://user:pass@host, and in
// user:pass@host, which nats.go takes as nats://user:pass@host.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndexByte(u, '@'); at >= 0 {
			start := 0
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				start = scheme + 3
			}
			parts[i] = u[:start] + "***" + u[at:]
		}
	}
	return strings.Join(parts, ",")
}

// Flush waits for the server to have processed what nc sent, bounded by
// ctx and at most 5 s (FlushWithContext needs a deadline).
func Flush(ctx context.Context, nc *nats.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return nc.FlushWithContext(ctx)
}
