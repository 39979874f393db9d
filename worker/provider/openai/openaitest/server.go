package openaitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Path is the chat-completions endpoint the fake serves.
const Path = "/v1/chat/completions"

// EmbeddingsPath is the embeddings endpoint the fake serves.
const EmbeddingsPath = "/v1/embeddings"

// Config sets the fake's behaviour; the zero value answers normally and
// needs no key.
type Config struct {
	// Key, when set, is the API key every call must send as
	// "Authorization: Bearer <Key>".
	Key string
	// Model, when set, is the only model served; others get 404
	// model_not_found.
	Model string
	// Reply is the text of every answer. Default: "echo: " followed by the
	// last user message.
	Reply string
	// Answers script the replies: the i-th chat call is answered with
	// Answers[i], and every call after the last with the last (see
	// Answer). Nil answers every call with Reply.
	Answers []Answer
	// Respond, when set, scripts the answer to each valid chat request
	// from the request itself (as a model answers what it is asked, so
	// that concurrent tool loops each get their turn's answer), and wins
	// over Answers. Its answer is bound by the request as Answers' are.
	Respond func(*Request) Answer
	// EmbeddingDimensions is the length of the fake's embeddings, which
	// dimensions may shorten. Default 64.
	EmbeddingDimensions int
	// ShuffleEmbeddings answers the embeddings out of order (each with
	// its index), as servers that batch inputs may.
	ShuffleEmbeddings bool
	// ContextWindow, when > 0, is the model's window in tokens (words):
	// a prompt whose words plus max_tokens exceed it gets OpenAI's 400
	// context_length_exceeded.
	ContextWindow int
	// Fail, when set, is the answer to every valid call.
	Fail *Failure
	// StreamFault, when set, breaks every stream midway.
	StreamFault *StreamFault
	// Delay is waited before a non-streamed answer and before each content
	// chunk of a stream (ended early when the client goes away).
	Delay time.Duration
	// Azure, when set, makes the fake Azure OpenAI (see Azure): its path,
	// api-version, api-key or Entra ID token, and error bodies. Key is
	// then the api-key.
	Azure *Azure
}

// StreamFault breaks a stream after AfterChunks content chunks. With
// Error set the fake sends it as a data: {"error":...} event and ends the
// response; with Hang it holds the connection open, sending nothing, until
// the client goes away; with Abort it drops the connection; with Endless it
// sends content chunks (the answer's pieces over and over) as fast as the
// client reads them, never ending; with Trickle it sends content chunks a
// byte at a time, Trickle apart, never ending; with none of them it ends
// the response cleanly but without data: [DONE]. Endless and Trickle go on
// until the client goes away or the server closes.
type StreamFault struct {
	AfterChunks int
	Error       *APIError
	Hang        bool
	Abort       bool
	Endless     bool
	Trickle     time.Duration
}

// Recorded is one request the fake received.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	// Raw is the body as sent; Body is it decoded (nil when not JSON).
	Raw  []byte
	Body map[string]any
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

// Start starts a fake that the caller must Close (NewServer is the usual
// way in tests; Start is for examples and programs).
func Start(cfg Config) *Server {
	s := &Server{cfg: cfg, closed: make(chan struct{}), gone: make(chan struct{}, 1024),
		client: &http.Client{Transport: &http.Transport{}, Timeout: imageTimeout}}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close ends held and delayed answers and stops the server.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.ts.Close()
		s.client.CloseIdleConnections()
	})
}

// URL is the api_base to configure: the server's root with /v1, or the
// root alone for an Azure fake (Azure's api_base is the resource's root).
func (s *Server) URL() string {
	if s.cfg.Azure != nil {
		return s.ts.URL
	}
	return s.ts.URL + "/v1"
}

// Requests returns a copy of the requests received so far, in order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = Recorded{Method: r.Method, Path: r.Path, Header: r.Header.Clone(),
			Raw: bytes.Clone(r.Raw), Body: decode(r.Raw)}
	}
	return out
}

// Disconnected receives one value for each call whose client went away
// before the fake finished answering it.
func (s *Server) Disconnected() <-chan struct{} { return s.gone }

func (s *Server) record(r *http.Request, raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw, Body: decode(raw)})
}

// wait waits d, the client's departure or the server's close, and reports
// whether the answer should go on.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-r.Context().Done():
			s.clientGone()
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
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

func decode(raw []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// serve handles every request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return
	}
	s.record(r, raw)
	if s.cfg.Azure != nil {
		if f := s.cfg.Azure.check(r, s.cfg.Key); f != nil {
			writeFailure(w, *f)
			return
		}
	} else {
		if (r.URL.Path != Path && r.URL.Path != EmbeddingsPath) || r.Method != http.MethodPost {
			writeFailure(w, Failure{Status: http.StatusNotFound, Error: NewAPIError(
				"Unknown request URL: "+r.Method+" "+r.URL.Path+". Please check the URL for typos.",
				"invalid_request_error", "", "unknown_url")})
			return
		}
		if f := s.checkAuth(r); f != nil {
			writeFailure(w, *f)
			return
		}
	}
	if r.URL.Path == EmbeddingsPath || strings.HasSuffix(r.URL.Path, "/embeddings") {
		s.embed(w, r, raw)
		return
	}
	req, f := s.parseRequest(r, raw, s.cfg.Azure == nil)
	if f != nil {
		writeFailure(w, *f)
		return
	}
	if s.cfg.Model != "" && req.Model != s.cfg.Model {
		writeFailure(w, ModelNotFound(req.Model))
		return
	}
	prompt := promptTokens(req)
	if s.cfg.ContextWindow > 0 && prompt+req.limit() > s.cfg.ContextWindow {
		writeFailure(w, ContextLengthExceeded(s.cfg.ContextWindow, prompt, req.limit()))
		return
	}
	if s.cfg.Fail != nil {
		writeFailure(w, *s.cfg.Fail)
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
	writeJSON(w, http.StatusOK, nil, a.completion())
}

// checkAuth answers as OpenAI does to a missing or wrong key.
func (s *Server) checkAuth(r *http.Request) *Failure {
	if s.cfg.Key == "" {
		return nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return &Failure{Status: http.StatusUnauthorized, Error: NewAPIError(
			"You didn't provide an API key. Send it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY).",
			"invalid_request_error", "", "")}
	}
	const bearer = "Bearer "
	if len(h) <= len(bearer) || h[:len(bearer)] != bearer || h[len(bearer):] != s.cfg.Key {
		got := h
		if len(h) > len(bearer) && h[:len(bearer)] == bearer {
			got = h[len(bearer):]
		}
		return &Failure{Status: http.StatusUnauthorized, Error: NewAPIError(
			"Incorrect API key provided: "+mask(got)+". You can find your API key in your account settings.",
			"invalid_request_error", "", "invalid_api_key")}
	}
	return nil
}

// mask shows a key as OpenAI does in its 401 message: a few characters of
// each end.
func mask(key string) string {
	if len(key) < 12 {
		return "****"
	}
	return key[:3] + "*****" + key[len(key)-4:]
}

func writeFailure(w http.ResponseWriter, f Failure) {
	if f.Body != nil {
		writeJSON(w, f.Status, f.Header, f.Body)
		return
	}
	writeJSON(w, f.Status, f.Header, map[string]any{"error": f.Error})
}

func writeJSON(w http.ResponseWriter, status int, h http.Header, v any) {
	for k, vs := range h {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
