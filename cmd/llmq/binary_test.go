package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestBinary_UpThenComplete_AnswersAndStopsCleanly is the quickstart with
// the real binary: `llmq up` (what `make run` runs), then `llmq complete`
// and `llmq status` as separate processes, then SIGTERM.
func TestBinary_UpThenComplete_AnswersAndStopsCleanly(t *testing.T) {
	t.Parallel()
	up := startProc(t, "up", "up", "--listen", "127.0.0.1:-1", "--log-format", "json")
	done := make(chan error, 1)
	url := up.stdout.await(t, readyRE, done)[1]
	out, err := exec.Command(llmqBinary(t), "complete", "--nats", url, "--tier", "tier1", "--max-tokens", "3", "write a haiku about queues").CombinedOutput()
	if err != nil {
		t.Fatalf("complete: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "write a haiku" {
		t.Fatalf("complete printed %q", got)
	}
	out, err = exec.Command(llmqBinary(t), "complete", "--nats", url, "--tier", "nope", "hi").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "unknown_tier") {
		t.Fatalf("unknown tier: err %v, output %s", err, out)
	}
	out, err = exec.Command(llmqBinary(t), "status", "--nats", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "tier3-sonnet") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	up.signal(t, syscall.SIGTERM)
	if err := up.wait(t); err != nil {
		t.Fatalf("up exited with %v after SIGTERM; log:\n%s", err, up.stderr.String())
	}
}
