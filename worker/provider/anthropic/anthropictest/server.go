// Package anthropictest is a strict fake of Anthropic's Messages API for
// tests: it checks the path, method, headers and body the way the API
// does, answers violations with the API's own error status and body, and
// answers valid requests with a Message or its server-sent event stream.
// Tokens are whitespace-separated words, so tests can predict usage.
package anthropictest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// Version is the anthropic-version the fake expects; it also accepts
// 2023-01-01, the other version the API knows.
const Version = "2023-06-01"

// maxBody is the API's request size limit (32 MB).
const maxBody = 32 << 20

// StreamFault is a way for a stream to fail midway.
type StreamFault int

const (
	// NoFault streams to message_stop.
	NoFault StreamFault = iota
	// FaultError sends an `event: error` (Config.StreamError, by default
	// overloaded_error) and ends the stream, as the API does when it gets
	// overloaded mid-answer.
	FaultError
	// FaultCut drops the connection without message_stop.
	FaultCut
	// FaultEndless never ends the stream: after FailAfter deltas it sends
	// the reply's words again and again, as fast as the client reads,
	// until the client goes away.
	FaultEndless
)

// Config sets the fake's behaviour; the zero value answers normally.
type Config struct {
	// Key is the x-api-key the fake requires; "" accepts any non-empty key.
	Key string
	// Reply is the text the fake answers; "" answers "echo: " followed by
	// the last user message.
	Reply string
	// StopReason, when set, replaces the stop_reason the fake computes
	// (end_turn, stop_sequence or max_tokens), e.g. "refusal", "tool_use".
	StopReason string
	// Models, when set, are the only models the fake knows; others get 404
	// not_found_error.
	Models []string
	// ContextWindow, when set, is the most input tokens a request may have;
	// longer prompts get 400 "prompt is too long: N tokens > M maximum".
	ContextWindow int
	// MaxOutputTokens, when set, is the largest max_tokens accepted.
	MaxOutputTokens int
	// Fail makes valid requests fail with this answer.
	Fail *Failure
	// FailTimes limits Fail to the first FailTimes valid requests; 0 fails
	// every one.
	FailTimes int
	// FailMidStream makes streams fail after FailAfter text deltas.
	FailMidStream StreamFault
	FailAfter     int
	// StreamError is the error event of FaultError; nil is Overloaded().
	StreamError *Failure
	// Delay is spent before each word of a reply (streamed or not), so
	// that time-outs and cancellation can be tested.
	Delay time.Duration
	// Respond, when set, scripts the answer to each valid request: text
	// and tool_use blocks (stop_reason "tool_use" when it has any). It
	// replaces Reply.
	Respond func(req *Request) Answer
}

// Recorded is a request the fake received.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	// Raw is the body as sent; Body is it decoded (as far as it decodes).
	Raw  []byte
	Body Request
}

// Server is a running fake. It is safe for concurrent requests.
type Server struct {
	cfg    Config
	srv    *httptest.Server
	done   chan struct{}
	once   sync.Once
	aborts chan struct{}
	client *http.Client // fetches image URLs

	mu    sync.Mutex
	reqs  []Recorded
	valid int
	seq   int
}

// NewServer starts a fake on 127.0.0.1 and closes it when the test ends.
func NewServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s := Start(cfg)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake on 127.0.0.1; Close stops it. Tests use NewServer.
func Start(cfg Config) *Server {
	s := &Server{cfg: cfg, done: make(chan struct{}), aborts: make(chan struct{}, 64),
		client: &http.Client{Transport: &http.Transport{}}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	return s
}

// Close stops the fake, ending any answer still being written.
func (s *Server) Close() {
	s.once.Do(func() { close(s.done) })
	s.srv.Close()
	s.client.CloseIdleConnections()
}

// URL is the api_base to configure: the host root, without /v1.
func (s *Server) URL() string { return s.srv.URL }

// Requests returns a copy of the requests received so far, in order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.reqs))
	for i, r := range s.reqs {
		r.Header = r.Header.Clone()
		r.Raw = slices.Clone(r.Raw)
		out[i] = r
	}
	return out
}

// Aborts receives once for each answer whose client went away before it
// was complete (up to 64 not yet received).
func (s *Server) Aborts() <-chan struct{} { return s.aborts }

func (s *Server) aborted() {
	select {
	case s.aborts <- struct{}{}:
	default:
	}
}

// record stores a request and returns the request-id of its answer.
func (s *Server) record(rec Recorded) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, rec)
	s.seq++
	return fmt.Sprintf("req_fake%020d", s.seq)
}

// failNow counts a valid request and reports whether Config.Fail applies.
func (s *Server) failNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.valid++
	return s.cfg.Fail != nil && (s.cfg.FailTimes <= 0 || s.valid <= s.cfg.FailTimes)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client went away while sending
	}
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	_ = json.Unmarshal(raw, &rec.Body)
	rid := s.record(rec)
	if f := s.check(r, raw); f != nil {
		f.write(w, rid)
		return
	}
	req, f := decode(raw, &s.cfg)
	if f == nil {
		f = s.refuse(req)
	}
	if f == nil {
		f = s.fetchImages(r.Context(), req)
	}
	if f == nil && s.failNow() {
		f = s.cfg.Fail
	}
	if f != nil {
		f.write(w, rid)
		return
	}
	a, f := s.compose(req, rid)
	if f != nil {
		f.write(w, rid)
		return
	}
	if req.Stream != nil && *req.Stream {
		s.stream(w, r, a)
		return
	}
	s.reply(w, r, a)
}

// check applies the checks made before the body is read: path, method,
// size, key, version and content type.
func (s *Server) check(r *http.Request, raw []byte) *Failure {
	if r.URL.Path != "/v1/messages" {
		return &Failure{Status: http.StatusNotFound, Type: "not_found_error", Message: "Not Found"}
	}
	if r.Method != http.MethodPost {
		return &Failure{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Message: "Method Not Allowed"}
	}
	if len(raw) > maxBody {
		return Documented(http.StatusRequestEntityTooLarge)
	}
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		return &Failure{Status: http.StatusUnauthorized, Type: "authentication_error", Message: "x-api-key header is required"}
	}
	if s.cfg.Key != "" && key != s.cfg.Key {
		return Documented(http.StatusUnauthorized)
	}
	switch v := r.Header.Get("Anthropic-Version"); v {
	case Version, "2023-01-01":
	case "":
		return invalid("anthropic-version: header is required")
	default:
		return invalid("anthropic-version: %q is not a valid version", v)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return invalid("content-type: must be application/json")
	}
	return nil
}

// refuse applies the checks that depend on the model: known models and
// the context window.
func (s *Server) refuse(req *Request) *Failure {
	if len(s.cfg.Models) > 0 && !slices.Contains(s.cfg.Models, req.Model) {
		return &Failure{Status: http.StatusNotFound, Type: "not_found_error", Message: "model: " + req.Model}
	}
	if n := req.inputTokens(); s.cfg.ContextWindow > 0 && n > s.cfg.ContextWindow {
		return PromptTooLong(n, s.cfg.ContextWindow)
	}
	return nil
}

// wait spends Delay, and reports false when the client or the server went
// away meanwhile.
func (s *Server) wait(r *http.Request) bool {
	if s.cfg.Delay <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(s.cfg.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	return false
}
