package auth_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/auth"
)

// startServer writes a config for users and starts nats-server from it.
func startServer(t *testing.T, users ...auth.User) (url, dir string) {
	t.Helper()
	g, err := auth.Generate(auth.Config{Users: users, Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if _, err := auth.WriteFiles(dir, "", g, false); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, auth.ServerConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv.ClientURL(), dir
}

func connectAs(t *testing.T, url, dir, user string) (*nats.Conn, chan error) {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(dir, auth.SeedFile(user)))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	nc, err := nats.Connect(url, opt, nats.CustomInboxPrefix(auth.Inbox(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// TestServer_ProducerCancelsAStreamAfterAnyNumberOfChunks: every chunk of
// a stream carries the same reply subject (the worker's control subject).
// nats-server counts each delivery against allow_responses' max, so with
// the default max of 1 the producer's cancel was refused after an even
// number of chunks. (Before: refused after 2 chunks.)
func TestServer_ProducerCancelsAStreamAfterAnyNumberOfChunks(t *testing.T) {
	t.Parallel()
	url, dir := startServer(t, auth.DefaultUsers([]string{auth.Producer, auth.Worker})...)
	producer, perrs := connectAs(t, url, dir, auth.Producer)
	worker, werrs := connectAs(t, url, dir, auth.Worker)
	for chunks := 1; chunks <= 4; chunks++ {
		inbox := producer.NewInbox()
		sub, err := producer.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		control := worker.NewRespInbox() + "s.stream"
		csub, err := worker.SubscribeSync(control)
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(producer.Flush(), worker.Flush()); err != nil { // both subscriptions in place
			t.Fatal(err)
		}
		for range chunks {
			if err := worker.PublishMsg(&nats.Msg{Subject: inbox, Reply: control, Data: []byte("chunk")}); err != nil {
				t.Fatal(err)
			}
			if _, err := sub.NextMsg(5 * time.Second); err != nil {
				t.Fatalf("%d chunks: %v (producer %v, worker %v)", chunks, err, drain(perrs), drain(werrs))
			}
		}
		if err := producer.Publish(control, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := csub.NextMsg(5 * time.Second); err != nil {
			t.Errorf("cancel after %d chunks did not reach the worker: %v (%v)", chunks, err, drain(perrs))
		}
		_ = sub.Unsubscribe()
		_ = csub.Unsubscribe()
	}
}

func drain(errs chan error) error {
	var all []error
	for {
		select {
		case err := <-errs:
			all = append(all, err)
		default:
			return errors.Join(all...)
		}
	}
}

// TestServer_ProducerCannotAnswerWhatItWasNotSent: allow_responses covers
// only reply subjects of messages the producer received.
func TestServer_ProducerCannotAnswerWhatItWasNotSent(t *testing.T) {
	t.Parallel()
	url, dir := startServer(t, auth.DefaultUsers([]string{auth.Producer, auth.Worker})...)
	producer, perrs := connectAs(t, url, dir, auth.Producer)
	worker, _ := connectAs(t, url, dir, auth.Worker)
	control := worker.NewRespInbox() + "s.stream"
	if err := producer.Publish(control, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-perrs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), control) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the producer published to a worker's inbox it was never sent")
	}
}
