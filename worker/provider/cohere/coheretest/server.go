// Package coheretest is a strict fake of Cohere's v2 chat API for tests:
// POST /v2/chat, non-streamed and streamed (server-sent events
// message-start, tool-plan-delta…, content-start, content-delta…,
// content-end, tool-call-start, tool-call-delta…, tool-call-end,
// message-end). Config.Answers scripts tool calls and other replies.
//
// It checks what the API checks and answers violations with an HTTP
// status and Cohere's {"id", "message"} body: the path and method, the
// Bearer key, the JSON content type, the model, a non-empty messages
// array with roles system, user, assistant or tool and each role's
// members, images in user messages only, tool messages answering the
// calls before them, tool declarations, tool_choice REQUIRED or NONE,
// response_format, penalties within 0–1, at most five stop_sequences, p
// within 0.01–0.99, a non-negative temperature, k within 0–500 and a
// positive max_tokens. It accepts only the fields it implements and
// answers any other with a 400, so that a test catches an adapter sending
// OpenAI's names (top_p, stop, max_completion_tokens, user, n,
// parallel_tool_calls).
//
// Answers are deterministic: the reply is Config.Reply, or "echo: " and
// the last user message; a token is a whitespace-separated word.
// usage.billed_units counts the words, usage.tokens adds TemplateTokens to
// the input as Cohere's chat template does. max_tokens cuts the reply
// (MAX_TOKENS) and a stop sequence too (STOP_SEQUENCE).
package coheretest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Path is the endpoint the fake serves.
const Path = "/v2/chat"

// TemplateTokens is what the fake's chat template adds to the input
// tokens the model sees (usage.tokens) but Cohere does not bill.
const TemplateTokens = 7

// StreamFault is a way for a stream to fail midway.
type StreamFault int

const (
	// NoFault streams to message-end.
	NoFault StreamFault = iota
	// FaultCut drops the connection after FailAfter deltas, without
	// message-end.
	FaultCut
	// FaultError ends the stream after FailAfter deltas with a
	// message-end whose finish_reason is ERROR, as Cohere reports a
	// generation that failed midway.
	FaultError
	// FaultHang sends nothing more after FailAfter deltas until the client
	// goes away.
	FaultHang
	// FaultEnd ends the response cleanly after FailAfter deltas, without
	// message-end.
	FaultEnd
)

// Config sets the fake's behaviour; the zero value answers normally and
// accepts any non-empty key.
type Config struct {
	// Key, when set, is the only key accepted.
	Key string
	// Models, when set, are the only models served; others get 404.
	Models []string
	// Reply is the text of every answer; "" answers "echo: " and the last
	// user message.
	Reply string
	// Answers script the replies: the i-th call is answered with
	// Answers[i], every call after the last with the last (see Answer).
	Answers []Answer
	// Respond, when set, scripts the answer to each valid request from
	// the request itself (as a model answers what it is asked, so that
	// concurrent tool loops each get their turn's answer), and wins over
	// Answers. Its answer is bound by the request as Answers' are.
	Respond func(*Request) Answer
	// ContextWindow, when > 0, is the most input words a request may have;
	// more get Cohere's 400 "too many tokens".
	ContextWindow int
	// Fail, when set, is the answer to every valid call.
	Fail *Failure
	// FailMidStream and FailAfter break streams (see StreamFault).
	FailMidStream StreamFault
	FailAfter     int
	// Delay is waited before a non-streamed answer and before each delta.
	Delay time.Duration
}

// Recorded is one request the fake received.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// Server is a running fake.
type Server struct {
	cfg    Config
	ts     *httptest.Server
	closed chan struct{}
	once   sync.Once
	gone   chan struct{}
	seq    atomic.Int64
	calls  atomic.Int64 // chat calls answered, for Answers
	client *http.Client // fetches image URLs

	mu   sync.Mutex
	reqs []Recorded
}

// NewServer starts a fake on 127.0.0.1 and closes it when tb ends.
func NewServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s := Start(cfg)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake the caller must Close.
func Start(cfg Config) *Server {
	s := &Server{cfg: cfg, closed: make(chan struct{}), gone: make(chan struct{}, 1024),
		client: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close ends held answers and stops the server.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.ts.Close()
		s.client.CloseIdleConnections()
	})
}

// URL is the api_base to configure: the host root.
func (s *Server) URL() string { return s.ts.URL }

// Requests returns a copy of the requests received so far, in order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = Recorded{Method: r.Method, Path: r.Path, Header: r.Header.Clone(), Raw: bytes.Clone(r.Raw), Body: decode(r.Raw)}
	}
	return out
}

// Disconnected receives one value for each call whose client went away
// before the fake finished answering it.
func (s *Server) Disconnected() <-chan struct{} { return s.gone }

func decode(raw []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw})
	s.mu.Unlock()
	if r.URL.Path != Path || r.Method != http.MethodPost {
		s.fail(w, Failure{Status: http.StatusNotFound, Message: "Not Found"})
		return
	}
	if f := s.checkAuth(r); f != nil {
		s.fail(w, *f)
		return
	}
	req, f := s.parseRequest(r, raw)
	if f != nil {
		s.fail(w, *f)
		return
	}
	if len(s.cfg.Models) > 0 && !contains(s.cfg.Models, req.Model) {
		s.fail(w, ModelNotFound(req.Model))
		return
	}
	prompt := req.promptWords()
	if s.cfg.ContextWindow > 0 && prompt > s.cfg.ContextWindow {
		s.fail(w, TooManyTokens(prompt, s.cfg.ContextWindow))
		return
	}
	if s.cfg.Fail != nil {
		s.fail(w, *s.cfg.Fail)
		return
	}
	a := s.answer(req, prompt)
	if req.Stream {
		s.stream(w, r, a)
		return
	}
	if !s.wait(r, s.cfg.Delay) {
		return
	}
	writeJSON(w, http.StatusOK, nil, a.reply())
}

// checkAuth answers as Cohere does to a missing or wrong key.
func (s *Server) checkAuth(r *http.Request) *Failure {
	h := r.Header.Get("Authorization")
	const bearer = "Bearer "
	if h == "" {
		return &Failure{Status: http.StatusUnauthorized, Message: "no api key supplied"}
	}
	if len(h) <= len(bearer) || h[:len(bearer)] != bearer || (s.cfg.Key != "" && h[len(bearer):] != s.cfg.Key) {
		return &Failure{Status: http.StatusUnauthorized, Message: "invalid api token"}
	}
	return nil
}

func (s *Server) fail(w http.ResponseWriter, f Failure) {
	writeJSON(w, f.Status, f.Header, map[string]any{"id": s.newID(), "message": f.Message})
}

func (s *Server) newID() string {
	return fmt.Sprintf("c0e5f1a2-0000-4000-8000-%012d", s.seq.Add(1))
}

func writeJSON(w http.ResponseWriter, status int, h http.Header, v any) {
	for k, vs := range h {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// wait waits d, the client's departure or the server's close, and reports
// whether the answer should go on.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	} else {
		select {
		case <-r.Context().Done():
			s.clientGone()
			return false
		default:
			return true
		}
	}
	select {
	case <-timer:
		return true
	case <-r.Context().Done():
		s.clientGone()
		return false
	case <-s.closed:
		return false
	}
}

func (s *Server) clientGone() {
	select {
	case s.gone <- struct{}{}:
	default:
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
