package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
)

// helperEnv names the environment variable that makes this binary run as
// a helper process; its value is the JSON helperSpec.
const helperEnv = "LLMQ_BENCH_HELPER"

// helperSpec says which helper to run.
type helperSpec struct {
	// Kind is "nats" (an embedded NATS server), "openai" (OpenAIServer),
	// "echo" (Echo on Subject, against NATS), "proxy" (a bare reverse
	// proxy to Target) or "llmq" (llmq up --gateway assembled in this
	// process from Config, with a CPU profiler).
	Kind    string `json:"kind"`
	NATS    string `json:"nats,omitempty"`
	Subject string `json:"subject,omitempty"`
	Target  string `json:"target,omitempty"`
	Config  string `json:"config,omitempty"`
}

// helperReady is the one line a helper prints when it serves.
type helperReady struct {
	URL string `json:"url"`
	// Profiler is the host:port of a helper's CPU profiler (serveProfiler).
	Profiler string `json:"profiler,omitempty"`
}

// HelperMain runs this process as a bench helper (an embedded NATS server,
// the fake OpenAI server or the echo responder, each in a process of its
// own) when it was started as one, and then reports true: the caller
// exits. Otherwise it returns false at once. Mains and TestMain call it
// first.
func HelperMain() bool {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		return false
	}
	var spec helperSpec
	err := json.Unmarshal([]byte(raw), &spec)
	if err == nil {
		err = runHelper(spec)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "llmq bench helper %q: %v\n", raw, err)
		os.Exit(1)
	}
	return true
}

// runHelper serves until SIGTERM, SIGINT or the end of stdin (the parent
// holds stdin open; when it goes, so does the helper).
func runHelper(spec helperSpec) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	ready := func(url string) error {
		return json.NewEncoder(os.Stdout).Encode(helperReady{URL: url})
	}
	switch spec.Kind {
	case "nats":
		srv, err := broker.StartEmbedded(broker.EmbeddedConfig{})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		if err := ready(srv.ClientURL()); err != nil {
			return err
		}
	case "openai":
		s, err := StartOpenAI("")
		if err != nil {
			return err
		}
		defer s.Close()
		if err := ready(s.URL()); err != nil {
			return err
		}
	case "echo":
		nc, err := nats.Connect(spec.NATS, nats.Name("llmq-bench-echo"))
		if err != nil {
			return err
		}
		defer nc.Close()
		if _, err := Echo(nc, spec.Subject); err != nil {
			return err
		}
		if err := ready(""); err != nil {
			return err
		}
	case "proxy":
		addr, stop, err := serveProxy(spec.Target)
		if err != nil {
			return err
		}
		defer stop()
		if err := ready("http://" + addr + "/v1"); err != nil {
			return err
		}
	case "llmq":
		l, err := startInProcessLLMQ(ctx, spec.Config)
		if err != nil {
			return err
		}
		defer l.stop()
		prof, stop, err := serveProfiler()
		if err != nil {
			return err
		}
		defer stop()
		if err := json.NewEncoder(os.Stdout).Encode(helperReady{URL: l.url(), Profiler: prof}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown helper kind %q", spec.Kind)
	}
	<-ctx.Done()
	return nil
}

// proc is a child process: a helper or an llmq command.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tail
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// Pid is the process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// alive reports whether the process still runs.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// failure describes how the process ended, with its last stderr lines.
func (p *proc) failure() error {
	return fmt.Errorf("%s exited (%v): %s", p.name, p.err, strings.TrimSpace(p.stderr.String()))
}

// stop ends the process: end of stdin and SIGTERM, then SIGKILL after
// grace. Safe to call twice.
func (p *proc) stop(grace time.Duration) {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return
	case <-t.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// startProc starts path with args. With wantReady it waits (up to
// timeout) for the JSON line a helper prints when it serves and returns
// it.
func startProc(name, path string, args, env []string, wantReady bool, timeout time.Duration) (*proc, helperReady, error) {
	var ready helperReady
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	p := &proc{name: name, cmd: cmd, stderr: &tail{max: 16 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	lines := &firstLine{ch: make(chan string, 1), rest: p.stderr}
	cmd.Stdout = lines
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, ready, err
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, ready, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if !wantReady {
		return p, ready, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-lines.ch:
		if err := json.Unmarshal([]byte(line), &ready); err != nil {
			p.stop(time.Second)
			return nil, ready, fmt.Errorf("%s: unreadable ready line %q: %w", name, line, err)
		}
		return p, ready, nil
	case <-p.exited:
		return nil, ready, p.failure()
	case <-t.C:
		p.stop(time.Second)
		return nil, ready, fmt.Errorf("%s: not ready after %s: %s", name, timeout, p.stderr.String())
	}
}

// startHelper starts this binary as the helper spec.
func startHelper(spec helperSpec) (*proc, helperReady, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, helperReady{}, err
	}
	raw, _ := json.Marshal(spec)
	return startProc("helper "+spec.Kind, self, nil, []string{helperEnv + "=" + string(raw)}, true, 30*time.Second)
}

// firstLine sends the first line written to it on ch and passes the rest
// to rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	sent bool
	ch   chan string
	rest io.Writer
}

func (f *firstLine) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent {
		return f.rest.Write(b)
	}
	f.buf = append(f.buf, b...)
	if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
		f.sent = true
		f.ch <- string(f.buf[:i])
		if len(f.buf) > i+1 {
			_, _ = f.rest.Write(f.buf[i+1:])
		}
		f.buf = nil
	}
	return len(b), nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// rss returns the resident set size of process pid, in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("bench: rss of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("bench: no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}
