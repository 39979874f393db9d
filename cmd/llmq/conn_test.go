package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/llmq/llmq/auth"
)

// TestConnFlags_BadValuesRefusedBeforeConnecting: a typo in a connection
// flag is a usage error, not a hang.
func TestConnFlags_BadValuesRefusedBeforeConnecting(t *testing.T) {
	t.Parallel()
	for flag, want := range map[string]string{
		"--inbox-prefix=_INBOX.*":                    "--inbox-prefix",
		"--inbox-prefix=_INBOX..x":                   "--inbox-prefix",
		"--inbox-prefix=_INBOX.a b":                  "--inbox-prefix",
		"--inbox-prefix=_INBOX.>":                    "--inbox-prefix",
		"--ping-interval=0s":                         "--ping-interval",
		"--max-pings-out=0":                          "--max-pings-out",
		"--inbox-prefix=" + strings.Repeat("x", 600): "--inbox-prefix",
	} {
		cmd := newApp(newOutBuf(), newOutBuf()).root()
		cmd.SetArgs([]string{"complete", "--tier", "t1", "hi", "--nats", "nats://127.0.0.1:1", flag})
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", flag, err, want)
		}
	}
}

// TestConnEnv_EnvFileVariablesConnectAsTheUser: LLMQ_NKEY and
// LLMQ_INBOX_PREFIX (what a user's env file sets) stand in for --nkey and
// --inbox-prefix. Not parallel: it sets the environment.
func TestConnEnv_EnvFileVariablesConnectAsTheUser(t *testing.T) {
	g, err := auth.Generate(auth.Config{Users: auth.DefaultUsers([]string{auth.Operator})})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := auth.WriteFiles(dir, "", g, false); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, auth.ServerConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	opts.JetStream = false
	url := startNATS(t, opts).ClientURL()
	top := func() (string, error) {
		out, errOut := newOutBuf(), newOutBuf()
		cmd := newApp(out, errOut).root()
		cmd.SetArgs([]string{"top", "--once", "--wait", "300ms", "--nats", url, "--log-format", "json"})
		err := cmd.ExecuteContext(context.Background())
		return errOut.String(), err
	}
	t.Setenv(envNKey, filepath.Join(dir, auth.SeedFile(auth.Operator)))
	// Without the inbox prefix, the operator may not read its replies.
	t.Setenv(envInboxPrefix, "")
	if log, err := top(); err != nil || !violation.MatchString(log) {
		t.Fatalf("top with the default inbox prefix: %v, log:\n%s\nwant a permission violation on its inbox", err, log)
	}
	t.Setenv(envInboxPrefix, auth.Inbox(auth.Operator))
	if log, err := top(); err != nil || violation.MatchString(log) {
		t.Fatalf("top as the operator from the environment: %v, log:\n%s", err, log)
	}
}

// TestOnClosed_LossStopsTheCommand_ExitOnlyIfItDoesNotStop drives the
// handler directly: a leftover permission error is not a loss (the
// command's own Close after a refused publish); a real loss cancels the
// command and, if it does not stop within the grace, exits 2; a command
// that stops in time is not exited under (an in-process test survives).
func TestOnClosed_LossStopsTheCommand_ExitOnlyIfItDoesNotStop(t *testing.T) {
	t.Parallel()
	type run struct {
		a    *app
		cmd  *cobra.Command
		ctx  context.Context
		exit chan int
	}
	start := func() run {
		a := newApp(newOutBuf(), newOutBuf())
		a.g.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		cmd := &cobra.Command{Use: "worker"}
		cmd.SetContext(context.Background())
		exit := make(chan int, 1)
		a.g.exit = func(code int) { exit <- code }
		if err := a.prepareRun(cmd); err == nil {
			t.Fatal("prepareRun accepted unset connection flags")
		}
		a.g.inboxPrefix, a.g.pingInterval, a.g.maxPingsOut = "_INBOX", time.Second, 2
		if err := a.prepareRun(cmd); err != nil {
			t.Fatal(err)
		}
		a.g.watch.on, a.g.watch.grace = true, 50*time.Millisecond
		return run{a, cmd, cmd.Context(), exit}
	}

	r := start()
	r.a.onClosed(r.ctx, r.a.g.watch, "llmq-worker", fmt.Errorf("%w: Permissions Violation for Publish to \"x\"", nats.ErrPermissionViolation))
	if r.ctx.Err() != nil {
		t.Fatal("a leftover permission violation was taken for a lost connection")
	}
	lost := errors.New("nats: maximum control line exceeded")
	r.a.onClosed(r.ctx, r.a.g.watch, "llmq-worker", lost)
	if !errors.Is(context.Cause(r.ctx), errConnLost) {
		t.Fatalf("the command's context: %v", context.Cause(r.ctx))
	}
	select {
	case code := <-r.exit:
		if code != 2 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(wait):
		t.Fatal("a command that did not stop was not exited")
	}

	r = start()
	r.a.onClosed(r.ctx, r.a.g.watch, "llmq-worker", lost)
	if err := r.a.finishRun(r.cmd, nil); !errors.Is(err, errConnLost) {
		t.Fatalf("finishRun: %v, want the lost connection as the command's error", err)
	}
	select {
	case code := <-r.exit:
		t.Fatalf("exited %d after the command stopped by itself", code)
	case <-time.After(10 * r.a.g.watch.grace):
	}

	r = start()
	if err := r.a.finishRun(r.cmd, nil); err != nil {
		t.Fatal(err)
	}
	r.a.onClosed(r.ctx, r.a.g.watch, "llmq-worker", lost) // its own Close, after it returned
	if err := context.Cause(r.ctx); errors.Is(err, errConnLost) {
		t.Fatal("a close after the command returned was taken for a lost connection")
	}
}
