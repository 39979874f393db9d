package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildOnce builds the real llmq binary once per test run.
var buildOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// llmqBinary returns the path of a freshly built llmq binary.
func llmqBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "llmq-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "llmq")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, ".")
		buildOnce.out, buildOnce.err = cmd.CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("go build: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.path
}

// proc is a running llmq process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *outBuf
	stderr *outBuf
	done   chan error
}

// startProc starts the llmq binary with args; it is killed when the test
// ends if still running.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: newOutBuf(), stderr: newOutBuf(), done: make(chan error, 1)}
	p.cmd = exec.Command(llmqBinary(t), args...)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// awaitLog waits until the process logged a line matching re.
func (p *proc) awaitLog(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		// Forward the exit, if it comes first, without consuming it for good.
		err := <-p.done
		p.done <- err
		done <- err
	}()
	p.stderr.await(t, re, done)
}

// signal sends sig; kill9 is SIGKILL: the process dies mid-job with no
// goodbye.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// wait waits for the process to exit and returns its error.
func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(wait):
		t.Fatalf("%s did not exit within %s; log:\n%s", p.name, wait, p.stderr.String())
		return nil
	}
}
