package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// npmHint is what to run when the JavaScript producer cannot start.
const npmHint = "run `npm ci --prefix docs/examples` (Node.js 18+ needed)"

// TestNodeProducer proves docs/protocol.md is enough to write a producer in
// another language: docs/examples/producer.mjs, written from the doc with
// the official nats npm package, runs against an in-process `llmq up` (the
// demo fleet of simulated tiers) and its summary is checked here.
func TestNodeProducer(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	examples := filepath.Join(root, "docs", "examples")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): install Node.js and %s", err, npmHint)
	}
	for _, dep := range []string{"nats", "@msgpack/msgpack"} {
		if _, err := os.Stat(filepath.Join(examples, "node_modules", filepath.FromSlash(dep), "package.json")); err != nil {
			t.Fatalf("docs/examples/node_modules/%s is missing: %s", dep, npmHint)
		}
	}

	prefix := "nodetest" + strconv.FormatInt(time.Now().UnixNano(), 36)
	stdout := newWatchWriter("llmq is up")
	stderr := newWatchWriter("")
	cmd := newApp(stdout, stderr).root()
	cmd.SetArgs([]string{"up", "--listen", "127.0.0.1:" + strconv.Itoa(freePort(t)), "--prefix", prefix})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	// Stop `up` and wait for it before the test ends, whatever happens.
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("llmq up: %v\nstderr:\n%s", err, stderr)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("llmq up did not stop within 60 s of its context's end\nstderr:\n%s", stderr)
		}
	}
	defer stop()

	select {
	case <-stdout.ready:
	case err := <-done:
		stopped = true
		cancel()
		t.Fatalf("llmq up returned before it was up: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("llmq up did not print \"llmq is up\" within 60 s\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	m := regexp.MustCompile(`llmq is up: NATS at (\S+),`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no NATS URL in the ready line:\n%s", stdout)
	}
	url := m[1]

	nctx, ncancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer ncancel()
	var out, errOut bytes.Buffer
	run := exec.CommandContext(nctx, node, "producer.mjs", url, prefix)
	run.Dir = examples
	run.Stdout, run.Stderr = &out, &errOut
	runErr := run.Run()
	ncancel()
	line := lastLine(out.String())
	if runErr != nil {
		t.Fatalf("node producer.mjs: %v\nsummary: %s\nstderr:\n%s", runErr, line, errOut.String())
	}
	stop()

	var s nodeSummary
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	t.Logf("summary: %s", line)
	if !s.OK {
		t.Fatalf("producer reported deviations: %v", s.Errors)
	}
	if s.Prefix != prefix {
		t.Errorf("producer used prefix %q, want %q", s.Prefix, prefix)
	}

	// (a) JSON job: the reply echoes the prompt's words and ran on tier1.
	if s.JSON.ContentType != "application/json" {
		t.Errorf("json: reply Content-Type %q", s.JSON.ContentType)
	}
	assertEchoes(t, "json", s.JSON.Text, s.JSON.Prompt)
	if s.JSON.Routing.Tier != "tier1" || s.JSON.Routing.Worker == "" || s.JSON.Routing.Deployment == "" {
		t.Errorf("json: routing %+v, want tier1 with a worker and deployment", s.JSON.Routing)
	}

	// (b) msgpack job to tier2, max_tokens 8.
	if s.Msgpack.ContentType != "application/msgpack" {
		t.Errorf("msgpack: reply Content-Type %q", s.Msgpack.ContentType)
	}
	assertEchoes(t, "msgpack", s.Msgpack.Text, s.Msgpack.Prompt)
	if s.Msgpack.Routing.Tier != "tier2" {
		t.Errorf("msgpack: routing.tier %q, want tier2", s.Msgpack.Routing.Tier)
	}
	if n := len(strings.Fields(s.Msgpack.Text)); n != 8 || s.Msgpack.FinishReason != "length" {
		t.Errorf("msgpack: %d words, finish_reason %q; want 8 and length (max_tokens 8)", n, s.Msgpack.FinishReason)
	}

	// (c) unknown tier: the typed error.
	if s.UnknownTier.Code != "unknown_tier" || s.UnknownTier.CodeHeader != "unknown_tier" {
		t.Errorf("unknown tier: code %q, Llmq-Error-Code %q; want unknown_tier", s.UnknownTier.Code, s.UnknownTier.CodeHeader)
	}
	if s.UnknownTier.Status != 404 || s.UnknownTier.StatusHeader != "404" || s.UnknownTier.Type != "invalid_request_error" {
		t.Errorf("unknown tier: status %d, header %q, type %q; want 404, \"404\", invalid_request_error",
			s.UnknownTier.Status, s.UnknownTier.StatusHeader, s.UnknownTier.Type)
	}

	// (d) stream: Llmq-Seq 1..n, the deltas make the text (the same prompt
	// to the same simulated tier gives the same text as job (a)), one delta
	// per completion token, and the last message carries finish_reason,
	// usage and routing.
	st := s.Stream
	for i, seq := range st.Seqs {
		if seq != i+1 {
			t.Fatalf("stream: Llmq-Seq %v, want 1..n", st.Seqs)
		}
	}
	if !st.Ended || len(st.Seqs) != len(st.Deltas)+1 {
		t.Errorf("stream: ended %v with %d messages for %d deltas; want an end message after the deltas", st.Ended, len(st.Seqs), len(st.Deltas))
	}
	if joined := strings.Join(st.Deltas, ""); joined != st.Text || st.Text != s.JSON.Text {
		t.Errorf("stream: deltas join to %q, text %q; want both equal to the non-streamed reply %q", joined, st.Text, s.JSON.Text)
	}
	if st.FinishReason != "stop" {
		t.Errorf("stream: last message's finish_reason %q, want stop", st.FinishReason)
	}
	if st.Usage.CompletionTokens != len(st.Deltas) || st.Usage.TotalTokens != st.Usage.PromptTokens+st.Usage.CompletionTokens {
		t.Errorf("stream: usage %+v for %d deltas", st.Usage, len(st.Deltas))
	}
	if st.Routing.Tier != "tier1" || st.Routing.TTFTMs <= 0 {
		t.Errorf("stream: routing %+v, want tier1 with ttft_ms", st.Routing)
	}

	// (e) cancel through the control subject: no end marker afterwards.
	if !s.Cancel.Cancelled || s.Cancel.EndSeen {
		t.Errorf("cancel: %+v, want cancelled with no end marker", s.Cancel)
	}
	// (f) no dispatcher on a prefix: NATS's 503.
	if s.NoResponders.ErrorCode != "503" {
		t.Errorf("no responders: error code %q, want 503", s.NoResponders.ErrorCode)
	}
}

// nodeSummary is the JSON line producer.mjs prints.
type nodeSummary struct {
	OK      bool     `json:"ok"`
	Errors  []string `json:"errors"`
	Prefix  string   `json:"prefix"`
	JSON    nodeJob  `json:"json"`
	Msgpack nodeJob  `json:"msgpack"`

	UnknownTier struct {
		Code         string `json:"code"`
		Type         string `json:"type"`
		Status       int    `json:"status"`
		StatusHeader string `json:"status_header"`
		CodeHeader   string `json:"code_header"`
	} `json:"unknown_tier"`

	Stream struct {
		Seqs         []int       `json:"seqs"`
		Ended        bool        `json:"ended"`
		Deltas       []string    `json:"deltas"`
		Text         string      `json:"text"`
		FinishReason string      `json:"finish_reason"`
		Usage        nodeUsage   `json:"usage"`
		Routing      nodeRouting `json:"routing"`
	} `json:"stream"`

	Cancel struct {
		Cancelled    bool `json:"cancelled"`
		EndSeen      bool `json:"end_seen"`
		BeforeCancel int  `json:"before_cancel"`
		AfterCancel  int  `json:"after_cancel"`
	} `json:"cancel"`

	NoResponders struct {
		ErrorCode string `json:"error_code"`
	} `json:"no_responders"`
}

type nodeJob struct {
	ContentType  string      `json:"content_type"`
	Prompt       string      `json:"prompt"`
	Text         string      `json:"text"`
	FinishReason string      `json:"finish_reason"`
	Usage        nodeUsage   `json:"usage"`
	Routing      nodeRouting `json:"routing"`
}

type nodeUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type nodeRouting struct {
	Tier       string  `json:"tier"`
	Deployment string  `json:"deployment"`
	Worker     string  `json:"worker"`
	Provider   string  `json:"provider"`
	Model      string  `json:"model"`
	Attempts   int     `json:"attempts"`
	TTFTMs     float64 `json:"ttft_ms"`
}

// assertEchoes checks that text is made of the prompt's words, as the
// simulated models answer.
func assertEchoes(t *testing.T, what, text, prompt string) {
	t.Helper()
	words := map[string]bool{}
	for _, w := range strings.Fields(prompt) {
		words[w] = true
	}
	got := strings.Fields(text)
	if len(words) == 0 || len(got) == 0 {
		t.Errorf("%s: prompt %q, reply %q: want both non-empty", what, prompt, text)
		return
	}
	for _, w := range got {
		if !words[w] {
			t.Errorf("%s: reply %q has %q, not a word of the prompt %q", what, text, w, prompt)
			return
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// watchWriter is a goroutine-safe buffer whose ready channel closes once
// the text written to it contains a marker (never, for an empty marker).
type watchWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker []byte
	ready  chan struct{}
	seen   bool
}

func newWatchWriter(marker string) *watchWriter {
	return &watchWriter{marker: []byte(marker), ready: make(chan struct{})}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if !w.seen && len(w.marker) > 0 && bytes.Contains(w.buf.Bytes(), w.marker) {
		w.seen = true
		close(w.ready)
	}
	return n, err
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
