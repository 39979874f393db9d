// Command llmq runs a fleet of LLM backends behind NATS: `llmq up` for
// everything in one process, or `llmq dispatcher` and `llmq worker` as
// separate processes against a NATS server or cluster; `llmq complete`
// sends a job, `llmq status` shows the fleet.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/llmq/llmq/schema"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).root().ExecuteContext(ctx)
	stop()
	if err != nil {
		code := exitCode(err)
		if code == 1 {
			fmt.Fprintln(os.Stderr, err) // already reads "llmq <code> (<status>): ..."
		} else {
			fmt.Fprintln(os.Stderr, "llmq:", err)
		}
		os.Exit(code)
	}
}

// exitCode: 1 for a job error llmq replied with, 2 for anything else
// (usage, config, connection).
func exitCode(err error) int {
	var e *schema.Error
	if errors.As(err, &e) {
		return 1
	}
	return 2
}

// app holds what every command shares: its output streams and global
// flags.
type app struct {
	stdout, stderr io.Writer
	g              globalFlags
}

func newApp(stdout, stderr io.Writer) *app { return &app{stdout: stdout, stderr: stderr} }
