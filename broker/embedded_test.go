package broker_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
)

func TestStartEmbeddedRefusesBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    broker.EmbeddedConfig
		want string
	}{
		{"JetStream without StoreDir", broker.EmbeddedConfig{JetStream: true}, "JetStream needs a StoreDir"},
		{"listen without a port", broker.EmbeddedConfig{Listen: "127.0.0.1"}, `listen "127.0.0.1"`},
		{"listen with a bad port", broker.EmbeddedConfig{Listen: "127.0.0.1:http"}, "bad port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := broker.StartEmbedded(tt.c)
			if err == nil {
				e.Shutdown()
				t.Fatal("StartEmbedded succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestStartEmbeddedServes(t *testing.T) {
	t.Parallel()
	t.Run("random loopback port", func(t *testing.T) {
		t.Parallel()
		e := startServer(t, broker.EmbeddedConfig{ServerName: "n1"})
		if !strings.HasPrefix(e.ClientURL(), "nats://127.0.0.1:") {
			t.Fatalf("ClientURL = %q", e.ClientURL())
		}
		if e.Server().Name() != "n1" {
			t.Fatalf("server name = %q", e.Server().Name())
		}
		nc, err := nats.Connect(e.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if got := nc.MaxPayload(); got != 1<<20 {
			t.Fatalf("MaxPayload = %d, want the 1 MiB default", got)
		}
	})
	t.Run("JetStream with a StoreDir", func(t *testing.T) {
		t.Parallel()
		e := startServer(t, broker.EmbeddedConfig{JetStream: true, StoreDir: t.TempDir()})
		if !e.Server().JetStreamEnabled() {
			t.Fatal("JetStream off")
		}
	})
	t.Run("small max payload", func(t *testing.T) {
		t.Parallel()
		e := startServer(t, broker.EmbeddedConfig{MaxPayload: 4096})
		nc, err := nats.Connect(e.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if got := nc.MaxPayload(); got != 4096 {
			t.Fatalf("MaxPayload = %d, want 4096", got)
		}
		if err := nc.Publish("x", make([]byte, 5000)); err == nil {
			t.Fatal("published over the max payload")
		}
	})
	t.Run("no listener: in-process only", func(t *testing.T) {
		t.Parallel()
		e := startServer(t, broker.EmbeddedConfig{NoListen: true})
		if e.ClientURL() != "" {
			t.Fatalf("ClientURL = %q, want none", e.ClientURL())
		}
		nc, err := nats.Connect("", e.InProcess())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStartEmbeddedOnABusyPortFails(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: l.Addr().String(), ReadyTimeout: 300 * time.Millisecond})
	if err == nil {
		e.Shutdown()
		t.Fatal("started on a busy port")
	}
	if !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmbeddedShutdownTwice(t *testing.T) {
	t.Parallel()
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	url := e.ClientURL()
	done := make(chan struct{})
	go func() {
		e.Shutdown()
		e.Shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("second Shutdown hangs")
	}
	if nc, err := nats.Connect(url, nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("server still accepts connections after Shutdown")
	}
}

func TestSubjectWildcardsMatchOnAServer(t *testing.T) {
	t.Parallel()
	pub, subc := pair(t)
	s := broker.Subjects{Prefix: "wc"}
	jobs, err := subc.SubscribeSync(s.JobsWildcard())
	if err != nil {
		t.Fatal(err)
	}
	beats, err := subc.SubscribeSync(s.HeartbeatWildcard())
	if err != nil {
		t.Fatal(err)
	}
	if err := subc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{s.Jobs("a"), s.Jobs("b.c"), s.Heartbeat("w1"), "wc.hb.a.b", s.Worker("w1"), "other.jobs.a"} {
		if err := pub.Publish(subj, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	collect := func(sub *nats.Subscription) []string {
		var got []string
		for {
			m, err := sub.NextMsg(300 * time.Millisecond)
			if err != nil {
				return got
			}
			got = append(got, m.Subject)
		}
	}
	if got := strings.Join(collect(jobs), " "); got != "wc.jobs.a wc.jobs.b.c" {
		t.Errorf("jobs wildcard matched %q", got)
	}
	if got := strings.Join(collect(beats), " "); got != "wc.hb.w1" {
		t.Errorf("heartbeat wildcard matched %q", got)
	}
}
