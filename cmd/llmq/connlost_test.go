package main

import (
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/schema"
)

// startNATS starts a real NATS server in the test with opts (a random
// loopback port, no logs, no signals), shut down when the test ends.
func startNATS(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

var lostLine = regexp.MustCompile(`nats connection closed for good by the server or the client library: exiting so a supervisor restarts llmq`)

// awaitExitCode waits for p to exit and checks it exited with code.
func awaitExitCode(t *testing.T, p *proc, code int) {
	t.Helper()
	err := p.wait(t)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != code {
		t.Fatalf("%s exited with %v, want exit code %d; log:\n%s", p.name, err, code, p.stderr.String())
	}
}

// TestConnLost_CredentialsRevoked_EveryLongRunningCommandExitsNonZero
// revokes a running command's NATS credentials: the server closes the
// connection, nats.go retries, is refused twice and gives up for good.
// Every long-running command must then log why and exit non-zero, so a
// supervisor restarts it, rather than keep running with no connection.
// (Before: each kept running, deaf, until killed.)
func TestConnLost_CredentialsRevoked_EveryLongRunningCommandExitsNonZero(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		args  []string
		ready *regexp.Regexp // on stderr, else stdout
		out   bool
	}{
		{"dispatcher", []string{"dispatcher"}, regexp.MustCompile(`"msg":"batch runner started"`), false},
		{"worker", []string{"worker", "--tier", "t1", "--model", "sim/x", "--deployment", "d1"}, workerUp, false},
		{"gateway", []string{"gateway", "--listen", "127.0.0.1:0"}, regexp.MustCompile(`llmq gateway: http://`), true},
		{"batch-runner", []string{"batch-runner"}, regexp.MustCompile(`"msg":"batch runner started"`), false},
		{"top", []string{"top", "--interval", "200ms"}, regexp.MustCompile(`llmq top`), true},
		{"status --watch", []string{"status", "--watch", "--wait", "200ms"}, regexp.MustCompile(`llmq status`), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := &server.Options{Username: "llmq", Password: "s3cret-pass", JetStream: true, StoreDir: t.TempDir()}
			srv := startNATS(t, opts)
			args := append(append([]string{}, c.args...), "--nats", srv.ClientURL(), "--user", "llmq", "--password", "s3cret-pass",
				"--prefix", brokertest.Subjects(t).Prefix, "--log-format", "json")
			p := startProc(t, c.name, args...)
			if c.out {
				done := make(chan error, 1)
				p.stdout.await(t, c.ready, done)
			} else {
				p.awaitLog(t, c.ready)
			}
			revoked := opts.Clone()
			revoked.Password = "rotated"
			if err := srv.ReloadOptions(revoked); err != nil {
				t.Fatal(err)
			}
			awaitExitCode(t, p, 2)
			if !lostLine.MatchString(p.stderr.String()) {
				t.Errorf("%s exited without saying it lost its connection; log:\n%s", c.name, p.stderr.String())
			}
		})
	}
}

// TestConnLost_WorkerChunkOverServerLineLimit_WorkerExitsNonZero is
// finding 2's shape: a job whose reply subject fits the server's control
// line limit in the producer's publish, but not in the worker's stream
// chunk (same subject plus the worker's control subject). The server
// closes the worker's connection for good; the worker must exit non-zero
// with a log line instead of running on without a connection. (Before:
// it kept running and beating nothing, answering nothing, never exiting.)
func TestConnLost_WorkerChunkOverServerLineLimit_WorkerExitsNonZero(t *testing.T) {
	t.Parallel()
	const lineLimit = 1024
	srv := startNATS(t, &server.Options{MaxControlLine: lineLimit})
	prefix := brokertest.Subjects(t).Prefix
	w := startProc(t, "worker", "worker", "--tier", "t1", "--model", "sim/x", "--deployment", "d1",
		"--nats", srv.ClientURL(), "--prefix", prefix, "--log-format", "json")
	w.awaitLog(t, workerUp)
	subject := regexp.MustCompile(`"msg":"worker started".*?"subject":"([^"]+)"`).FindStringSubmatch(w.stderr.String())[1]

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	body, err := schema.MsgPack.Marshal(&schema.Request{Stream: true, Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content("hi")}}})
	if err != nil {
		t.Fatal(err)
	}
	// The producer's line is "PUB <subject> <reply> <size>"; the worker's
	// first chunk is "HPUB <reply> <control> <hdr> <size>", its control
	// subject (_INBOX.<22>.<8>s.<22>, 62 bytes) longer than the job
	// subject. Leave the producer 16 bytes of room.
	reply := "_INBOX." + strings.Repeat("r", lineLimit-16-len("PUB "+subject+"  1234")-len("_INBOX."))
	if chunk := len("HPUB " + reply + " " + strings.Repeat("c", 62) + " 12 123"); chunk <= lineLimit {
		t.Fatalf("chunk line of %d bytes fits the limit; the test needs a shorter job subject than %q", chunk, subject)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: reply, Data: body}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("the producer's own publish was refused: %v", err)
	}
	awaitExitCode(t, w, 2)
	if !lostLine.MatchString(w.stderr.String()) {
		t.Errorf("worker exited without saying it lost its connection; log:\n%s", w.stderr.String())
	}
}

// TestLongRunning_OnlyCommandsThatRunUntilInterruptedExitOnALostConnection:
// one-shot commands end by themselves (a lost connection fails their
// requests); the others must be watched.
func TestLongRunning_OnlyCommandsThatRunUntilInterruptedExitOnALostConnection(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"up": true, "dispatcher": true, "worker": true, "gateway": true, "batch-runner": true,
		"top": true, "top --once": false, "status --watch": true, "status": false,
		"complete hi": false, "batch status x": false, "batch list": false, "auth roles": false,
	}
	for line, want := range cases {
		root := newApp(nil, nil).root()
		cmd, rest, err := root.Find(strings.Fields(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got := longRunning(cmd); got != want {
			t.Errorf("longRunning(%s) = %v, want %v", line, got, want)
		}
	}
}
