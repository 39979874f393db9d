package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/llmq/llmq/broker"
)

// errConnLost ends a long-running command whose NATS connection nats.go
// closed for good: the process exits non-zero so that a supervisor
// restarts it, instead of running on deaf.
var errConnLost = errors.New("nats connection lost for good")

// lostExitGrace is how long a command that lost its connection has to stop
// by itself before the process exits anyway: with the connection gone,
// nothing in flight can be answered, so there is nothing worth draining.
const lostExitGrace = 5 * time.Second

// Environment variables read when the matching flag is not given, so that
// a role's env file (llmq auth init writes one per user) sets them.
const (
	envNKey        = "LLMQ_NKEY"
	envInboxPrefix = "LLMQ_INBOX_PREFIX"
)

// connWatch is what a command's run needs to turn a lost connection into
// an exit.
type connWatch struct {
	// on is set for long-running commands: up, dispatcher, worker,
	// gateway, batch-runner, top and status --watch.
	on bool
	// lost cancels the command's context with errConnLost as the cause.
	lost context.CancelCauseFunc
	// exit ends the process when the command does not stop within grace
	// (default lostExitGrace). Default os.Exit.
	exit  func(code int)
	grace time.Duration

	mu       sync.Mutex
	finished bool        // the command returned: it stopped by itself
	timer    *time.Timer // the exit of last resort, once the connection is lost
}

// longRunning reports whether cmd runs until interrupted.
func longRunning(cmd *cobra.Command) bool {
	if cmd.Parent() == nil || cmd.Parent().Parent() != nil {
		return false // root, or a subcommand of batch/auth
	}
	flag := func(name string) bool {
		v, _ := cmd.Flags().GetBool(name)
		return v
	}
	switch cmd.Name() {
	case "up", "dispatcher", "worker", "gateway", "batch-runner":
		return true
	case "top":
		return !flag("once")
	case "status":
		return flag("watch")
	}
	return false
}

// prepareRun gives the command a context a lost connection can cancel,
// and applies environment defaults to connection flags. It runs before
// every command.
func (a *app) prepareRun(cmd *cobra.Command) error {
	ctx, cancel := context.WithCancelCause(cmd.Context())
	cmd.SetContext(ctx)
	a.g.watch = &connWatch{on: longRunning(cmd), lost: cancel, exit: a.g.exit}
	if f := cmd.Flag("nkey"); f != nil && !f.Changed && a.g.nkey == "" {
		a.g.nkey = os.Getenv(envNKey)
	}
	if f := cmd.Flag("inbox-prefix"); f != nil && !f.Changed {
		if v := os.Getenv(envInboxPrefix); v != "" {
			a.g.inboxPrefix = v
		}
	}
	if err := validInboxPrefix(a.g.inboxPrefix); err != nil {
		return err
	}
	if a.g.pingInterval <= 0 {
		return fmt.Errorf("--ping-interval %s: want a positive duration", a.g.pingInterval)
	}
	if a.g.maxPingsOut < 1 {
		return fmt.Errorf("--max-pings-out %d: want at least 1", a.g.maxPingsOut)
	}
	return nil
}

// finishRun turns a lost connection into the command's error, whatever the
// command itself returned after its context ended. The command has stopped
// by itself: the exit of last resort is called off, and a close of its
// connection from now on is its own.
func (a *app) finishRun(cmd *cobra.Command, err error) error {
	if w := a.g.watch; w != nil {
		w.mu.Lock()
		w.finished = true
		if w.timer != nil {
			w.timer.Stop()
		}
		w.mu.Unlock()
		w.lost(nil)
	}
	if cause := context.Cause(cmd.Context()); errors.Is(cause, errConnLost) {
		return errors.Join(cause, err)
	}
	return err
}

// validInboxPrefix checks p is a literal subject (dot-separated tokens,
// no wildcards or spaces) that NATS can prefix reply subjects with.
func validInboxPrefix(p string) error {
	if p == "" || len(p) > broker.MaxReplyLen/2 {
		return fmt.Errorf("--inbox-prefix %q: want a subject such as _INBOX or _INBOX.<user>", p)
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("--inbox-prefix %q: want dot-separated tokens without wildcards or spaces, such as _INBOX.<user>", p)
		}
	}
	return nil
}

func (a *app) connect(ctx context.Context, name string) (*nats.Conn, error) {
	c := broker.ConnectConfig{
		URLs: a.g.natsURLs, Name: name, CredsFile: a.g.creds, NKeyFile: a.g.nkey,
		User: a.g.user, Password: a.g.password, Token: a.g.token,
		TLSCert: a.g.tlsCert, TLSKey: a.g.tlsKey, TLSCA: a.g.tlsCA, TLSFirst: a.g.tlsFirst,
		ConnectTimeout: a.g.connectTimeout, Logger: a.g.logger,
		PingInterval: a.g.pingInterval, MaxPingsOut: a.g.maxPingsOut, InboxPrefix: a.g.inboxPrefix,
	}
	if w := a.g.watch; w != nil && w.on {
		c.OnClosed = func(err error) { a.onClosed(ctx, w, name, err) }
	}
	if a.g.inProcess != nil {
		c.Options = append(c.Options, a.g.inProcess)
	}
	return broker.Connect(ctx, c)
}

// onClosed runs when nats.go has closed a long-running command's
// connection for good. A close after the command's context ended is the
// command's own shutdown; one with no error, or with only a transient
// error left over from earlier (a refused publish, a slow consumer), is
// its own Close: nats.go records why whenever it gives up by itself.
// Anything else is a connection lost while the process still runs: say
// so, stop the command, and make sure the process ends.
func (a *app) onClosed(ctx context.Context, w *connWatch, name string, err error) {
	if ctx.Err() != nil || err == nil || errors.Is(err, nats.ErrPermissionViolation) ||
		errors.Is(err, nats.ErrSlowConsumer) || errors.Is(err, nats.ErrMaxSubscriptionsExceeded) {
		return
	}
	a.g.logger.Error("nats connection closed for good by the server or the client library: exiting so a supervisor restarts llmq",
		"connection", name, "err", err)
	w.lost(fmt.Errorf("%w (%s): %v", errConnLost, name, err))
	exit := w.exit
	if exit == nil {
		exit = os.Exit
	}
	grace := w.grace
	if grace <= 0 {
		grace = lostExitGrace
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.finished && w.timer == nil {
		w.timer = time.AfterFunc(grace, func() {
			a.g.logger.Error("still running after losing the nats connection: exiting now", "connection", name, "grace", grace)
			exit(2)
		})
	}
}
