package broker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
)

// Not parallel: t.Setenv forbids it.
func TestConnectConfigURL(t *testing.T) {
	tests := []struct {
		name string
		urls []string
		env  string
		want string
	}{
		{"nothing set: default", nil, "", broker.DefaultURL},
		{"nothing set: NATS_URL", nil, "nats://env:4222", "nats://env:4222"},
		{"NATS_URL list kept as is", nil, "nats://a:1,nats://b:2", "nats://a:1,nats://b:2"},
		{"one URL wins over NATS_URL", []string{"nats://x:4222"}, "nats://env:4222", "nats://x:4222"},
		{"several URLs", []string{"nats://a:1", "nats://b:2"}, "", "nats://a:1,nats://b:2"},
		{"comma lists split and trimmed", []string{" nats://a:1 , nats://b:2", "nats://c:3"}, "", "nats://a:1,nats://b:2,nats://c:3"},
		{"empty parts dropped", []string{",nats://a:1,,", ""}, "", "nats://a:1"},
		{"only empty parts: NATS_URL", []string{" , ", ""}, "nats://env:4222", "nats://env:4222"},
		{"only empty parts: default", []string{","}, "", broker.DefaultURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NATS_URL", tt.env)
			if got := (broker.ConnectConfig{URLs: tt.urls}).URL(); got != tt.want {
				t.Fatalf("URL() = %q, want %q", got, tt.want)
			}
		})
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startServer(t *testing.T, c broker.EmbeddedConfig) *broker.Embedded {
	t.Helper()
	e, err := broker.StartEmbedded(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// deadAddr is a loopback host:port nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestConnectToEmbeddedServer(t *testing.T) {
	t.Parallel()
	srv := startServer(t, broker.EmbeddedConfig{})
	tests := []struct {
		name string
		urls []string
	}{
		{"one URL", []string{srv.ClientURL()}},
		{"first URL dead", []string{"nats://" + deadAddr(t), srv.ClientURL()}},
		{"dead URL first in a comma list", []string{"nats://" + deadAddr(t) + "," + srv.ClientURL()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nc, err := broker.Connect(context.Background(), broker.ConnectConfig{
				URLs: tt.urls, Name: "test-" + tt.name, ConnectTimeout: 2 * time.Second, Logger: quiet(),
				Options: []nats.Option{nats.DontRandomize()}, // try the dead one first
			})
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if !nc.IsConnected() || nc.ConnectedUrl() != srv.ClientURL() {
				t.Fatalf("connected = %v to %q, want %q", nc.IsConnected(), nc.ConnectedUrl(), srv.ClientURL())
			}
			// The connection works end to end.
			sub, err := nc.SubscribeSync("x.y")
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Publish("x.y", []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "hi" {
				t.Fatalf("NextMsg = %v, %v", m, err)
			}
			if err := broker.Flush(context.Background(), nc); err != nil {
				t.Fatalf("Flush: %v", err)
			}
		})
	}
	t.Run("in-process option", func(t *testing.T) {
		t.Parallel()
		nc, err := broker.Connect(context.Background(), broker.ConnectConfig{
			URLs: []string{"nats://" + deadAddr(t)}, Logger: quiet(), Options: []nats.Option{srv.InProcess()},
		})
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
	})
}

func TestConnectFailsWithoutLeakingPasswords(t *testing.T) {
	t.Parallel()
	dead := deadAddr(t)
	_, err := broker.Connect(context.Background(), broker.ConnectConfig{
		URLs: []string{"nats://alice:s3cr3t-pw@" + dead}, ConnectTimeout: time.Second, Logger: quiet(),
	})
	if err == nil {
		t.Fatal("connected to a dead port")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), dead) {
		t.Fatalf("error %q does not name the server", err)
	}
}

// silentServer accepts TCP connections and never speaks NATS, so a client
// hangs waiting for INFO. Its connections close when the test ends.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "nats://" + l.Addr().String()
}

func TestConnectHonoursContext(t *testing.T) {
	t.Parallel()
	srv := startServer(t, broker.EmbeddedConfig{})
	tests := []struct {
		name    string
		url     func(t *testing.T) string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
	}{
		{"cancelled before the call, live server", func(*testing.T) string { return srv.ClientURL() },
			func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			}, context.Canceled},
		{"cancelled before the call, silent server", silentServer,
			func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			}, context.Canceled},
		{"deadline while the server is silent", silentServer,
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := tt.url(t)
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			nc, err := broker.Connect(ctx, broker.ConnectConfig{URLs: []string{url}, ConnectTimeout: 3 * time.Second, Logger: quiet()})
			if nc != nil {
				nc.Close()
				t.Fatal("connected despite the context")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Connect took %v, want prompt", d)
			}
		})
	}
}
