package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmq/llmq/broker/brokertest"
)

// wait bounds every event a CLI test waits for.
const wait = 30 * time.Second

// outBuf is a goroutine-safe output buffer that signals each write.
type outBuf struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func newOutBuf() *outBuf { return &outBuf{wrote: make(chan struct{}, 1)} }

func (b *outBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (b *outBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// await waits until the output matches re and returns the match.
func (b *outBuf) await(t *testing.T, re *regexp.Regexp, done <-chan error) []string {
	t.Helper()
	deadline := time.After(wait)
	for {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m
		}
		select {
		case <-b.wrote:
		case err := <-done:
			t.Fatalf("command ended (%v) before printing %s; output:\n%s", err, re, b.String())
		case <-deadline:
			t.Fatalf("no %s within %s; output:\n%s", re, wait, b.String())
		}
	}
}

// upRun is an in-process `llmq up`.
type upRun struct {
	URL    string
	Prefix string
	Stdout *outBuf
	Stderr *outBuf
	stop   func() error
}

var readyRE = regexp.MustCompile(`llmq is up: NATS at (nats://[0-9.:]+),`)

// startUp runs `llmq up` with args (plus a random port and a unique
// prefix) until the test ends.
func startUp(t *testing.T, args ...string) *upRun {
	t.Helper()
	prefix := brokertest.Subjects(t).Prefix
	u := &upRun{Prefix: prefix, Stdout: newOutBuf(), Stderr: newOutBuf()}
	cmd := newApp(u.Stdout, u.Stderr).root()
	cmd.SetArgs(append([]string{"up", "--listen", "127.0.0.1:-1", "--prefix", prefix, "--heartbeat", "200ms", "--log-format", "json"}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var once sync.Once
	var stopErr error
	u.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(wait):
				t.Errorf("llmq up did not stop within %s", wait)
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := u.stop(); err != nil {
			t.Errorf("llmq up ended with %v", err)
		}
	})
	u.URL = u.Stdout.await(t, readyRE, done)[1]
	return u
}

// run runs one llmq command in-process against the up instance and
// returns its output and error.
func (u *upRun) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	out, errOut := newOutBuf(), newOutBuf()
	cmd := newApp(out, errOut).root()
	cmd.SetArgs(append(args, "--nats", u.URL, "--prefix", u.Prefix, "--log-format", "json"))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func words(s string) []string { return strings.Fields(s) }

func contextWithWait() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), wait)
}
