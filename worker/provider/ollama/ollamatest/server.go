package ollamatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// Config sets the fake host's behaviour. The zero value answers every chat
// normally, without limits, for the model DefaultModel.
type Config struct {
	// Models are the models the host has (GET /api/tags); a chat for any
	// other is a 404. A name without a tag is listed as name:latest.
	// Nil means DefaultModel; an empty, non-nil list is a host without
	// models.
	Models []string
	// Reply is the text every chat answers. Default: "echo: " followed by
	// the last user message.
	Reply string
	// ReplyFunc, when set, computes the reply from the request and wins
	// over Reply.
	ReplyFunc func(ChatRequest) string
	// Answer, when set, computes the whole answer (text and tool calls)
	// from the request and wins over ReplyFunc and Reply: tests script
	// tool calls, JSON replies and tool loops with it.
	Answer func(ChatRequest) Answer
	// CallsInFinalLine makes a streamed answer carry its tool calls, all
	// of them, in the final line ("done": true) rather than one line per
	// call, as Ollama does when the model's last token closes the calls.
	CallsInFinalLine bool
	// EmbedModels are embedding-only models the host has (listed by
	// /api/tags too): /api/embed serves them, /api/chat answers 400
	// "does not support chat" for them. /api/embed serves the Models too,
	// as Ollama embeds with any model.
	EmbedModels []string
	// NoTools are models without tool support: a chat with tools for one
	// is a 400 "does not support tools", as Ollama answers.
	NoTools []string
	// NoThink are models without thinking: a chat that turns think on
	// (true or a level) for one is a 400 "does not support thinking", as
	// Ollama answers; think false is accepted.
	NoThink []string
	// EmbedDims is the length of the vectors /api/embed returns (before
	// "dimensions" shortens them). Default DefaultEmbedDims.
	EmbedDims int
	// DoneReason, when set, replaces the done_reason of the final line
	// ("stop", or "length" when num_predict cut the reply).
	DoneReason string
	// Key, when set, is the bearer token every request must carry
	// (Authorization: Bearer <Key>), as a proxy in front of Ollama would
	// require; without it the answer is 401 {"error":"unauthorized"}.
	Key string
	// Fail, when set, makes every chat that passes validation fail with
	// this answer.
	Fail *Failure
	// FailMidStream, when set, makes every chat fail after some tokens.
	FailMidStream *MidStream
	// Delay is waited before each token (streamed or not), so tests can
	// cancel or time out a call while it runs.
	Delay time.Duration
	// Hold, when set, makes every admitted chat wait, holding its slot,
	// until a value is received from Hold or Hold is closed.
	Hold <-chan struct{}
	// Parallel, when positive, is how many chats generate at once
	// (OLLAMA_NUM_PARALLEL); others wait in the queue.
	Parallel int
	// MaxQueue is how many chats may wait for a slot when Parallel is
	// positive (OLLAMA_MAX_QUEUE); one more is answered 503 BusyMessage.
	// Zero means none may wait (DefaultHostQueue in the host model).
	MaxQueue int

	// MaxLoaded, when positive, turns on the host model (host.go): the
	// host holds at most MaxLoaded of its Models in memory at once
	// (OLLAMA_MAX_LOADED_MODELS, or what fits in VRAM); a chat for a model
	// not loaded waits LoadTime for it to load, evicting the least
	// recently used model with no call in flight when the host is full;
	// Parallel is then per model (OLLAMA_NUM_PARALLEL), requests wait in
	// one FIFO as in Ollama's scheduler, keep_alive is honoured (0
	// unloads the model when its last call ends) and GET /api/ps lists
	// what is loaded. Zero: every model is always loaded and Parallel
	// bounds the whole host, as before.
	MaxLoaded int
	// LoadTime is how long loading a model takes in the host model.
	LoadTime time.Duration
	// KeepAlive is the keep_alive of requests that set none
	// (OLLAMA_KEEP_ALIVE). Default DefaultKeepAlive.
	KeepAlive time.Duration
}

// Answer is a scripted answer: its text, streamed word by word, and the
// tool calls the model makes (streamed one per line, after the text).
type Answer struct {
	Content   string
	ToolCalls []ToolCall
}

// DefaultEmbedDims is the default length of the fake's embeddings.
const DefaultEmbedDims = 8

// Failure is an error answer: Status with the body {"error": Message}.
type Failure struct {
	Status  int
	Message string
	// RetryAfter, when set, is sent as the Retry-After header (Ollama
	// itself never sends one; a proxy might).
	RetryAfter string
	// RawBody, when set, is sent as a text/plain body instead of the JSON
	// one, as a proxy's error page would be.
	RawBody string
}

// Busy returns Ollama's answer when the queue is full: 503 BusyMessage.
func Busy() *Failure { return &Failure{Status: http.StatusServiceUnavailable, Message: BusyMessage} }

// MidStream makes a chat fail after After tokens: with the line
// {"error": Error} inside the 200 stream (a 500 with that body when the
// chat is not streamed); when Error is empty, by dropping the connection,
// or, with EndCleanly, by ending the body without the final line. Endless
// and Trickle apply to streamed chats only: with Endless the stream never
// ends, sending the reply's tokens over and over as fast as the client
// reads; with Trickle it sends token lines a byte at a time, Trickle
// apart, never ending. Both go on until the client goes away or the
// server closes.
type MidStream struct {
	After      int
	Error      string
	EndCleanly bool
	Endless    bool
	Trickle    time.Duration
}

// Recorded is one request the fake received.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	// Raw is the body as sent.
	Raw []byte
	// Body is the decoded chat body, nil when the request is not a chat
	// or its body could not be decoded.
	Body *ChatRequest
	// Embed is the decoded embed body, nil when the request is not an
	// embed or its body could not be decoded.
	Embed *EmbedRequest
}

// Stats counts what the fake is doing and has done.
type Stats struct {
	// Received counts requests of any kind.
	Received int
	// InFlight counts chats holding a slot (generating, or held by Hold).
	InFlight int
	// MaxInFlight is the highest InFlight seen.
	MaxInFlight int
	// Queued counts chats waiting for a slot.
	Queued int
	// Served counts chats answered to their final line.
	Served int
	// Busy counts chats answered 503 because the queue was full.
	Busy int
	// Disconnected counts chats whose client went away before the end.
	Disconnected int
	// Embedded counts the texts /api/embed embedded.
	Embedded int
	// Loads counts models loaded and Unloads models unloaded (evicted,
	// expired, or keep_alive 0) in the host model.
	Loads, Unloads int
}

// Server is a running fake Ollama host.
type Server struct {
	cfg   Config
	srv   *httptest.Server
	slots chan struct{} // nil when Parallel is not positive
	done  chan struct{} // closed by Close

	closeOnce sync.Once

	mu      sync.Mutex
	reqs    []Recorded
	stats   Stats
	changed chan struct{} // closed and replaced whenever stats change
	host    host          // the host model's state (host.go)
}

// NewServer starts a fake host on 127.0.0.1; it is closed when tb ends.
func NewServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s := Start(cfg)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake host on 127.0.0.1 outside a test (examples, demos);
// the caller closes it. Tests use NewServer.
func Start(cfg Config) *Server {
	if cfg.Models == nil {
		cfg.Models = []string{DefaultModel}
	}
	if cfg.EmbedDims <= 0 {
		cfg.EmbedDims = DefaultEmbedDims
	}
	s := &Server{cfg: cfg, done: make(chan struct{}), changed: make(chan struct{}),
		host: host{loaded: map[string]*runner{}}}
	if cfg.Parallel > 0 {
		s.slots = make(chan struct{}, cfg.Parallel)
	}
	s.srv = httptest.NewServer(s)
	return s
}

// Close releases held and waiting chats, drops client connections and
// stops the server. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// URL returns the api_base to configure: the host root, like
// http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.srv.URL }

// Requests returns a copy of the requests received so far, in order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.reqs))
	for i, r := range s.reqs {
		r.Header = r.Header.Clone()
		r.Raw = bytes.Clone(r.Raw)
		out[i] = r
	}
	return out
}

// Stats returns the counters now.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// InFlight returns how many chats hold a slot now.
func (s *Server) InFlight() int { return s.Stats().InFlight }

// MaxInFlight returns the most chats that held a slot at once.
func (s *Server) MaxInFlight() int { return s.Stats().MaxInFlight }

// Await waits until cond holds for the counters, or ctx ends. Tests use it
// to wait on events (n chats in flight, a client gone) instead of
// sleeping.
func (s *Server) Await(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		st, ch := s.stats, s.changed
		s.mu.Unlock()
		if cond(st) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("ollamatest: condition not met, stats %+v: %w", st, ctx.Err())
		}
	}
}

// update changes the counters and wakes Await.
func (s *Server) update(f func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
	if s.stats.InFlight > s.stats.MaxInFlight {
		s.stats.MaxInFlight = s.stats.InFlight
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// ServeHTTP routes as Ollama does: unknown paths are 404 "404 page not
// found", known paths with another method 405 "405 method not allowed".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	switch r.URL.Path {
	case "/api/chat":
		var body ChatRequest
		if json.Unmarshal(raw, &body) == nil {
			rec.Body = &body
		}
	case "/api/embed":
		var body EmbedRequest
		if json.Unmarshal(raw, &body) == nil {
			rec.Embed = &body
		}
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()
	s.update(func(st *Stats) { st.Received++ })

	if s.cfg.Key != "" && r.Header.Get("Authorization") != "Bearer "+s.cfg.Key {
		writeError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	var allowed []string
	switch r.URL.Path {
	case "/":
		allowed = []string{http.MethodGet, http.MethodHead}
	case "/api/tags", "/api/ps":
		allowed = []string{http.MethodGet, http.MethodHead}
	case "/api/chat", "/api/embed":
		allowed = []string{http.MethodPost}
	default:
		writeText(w, http.StatusNotFound, "404 page not found")
		return
	}
	if !contains(allowed, r.Method) {
		writeText(w, http.StatusMethodNotAllowed, "405 method not allowed")
		return
	}
	switch r.URL.Path {
	case "/":
		writeText(w, http.StatusOK, "Ollama is running")
	case "/api/tags":
		s.tags(w)
	case "/api/ps":
		s.ps(w)
	case "/api/chat":
		s.chat(w, r, raw)
	case "/api/embed":
		s.embed(w, raw)
	}
}

// tags answers GET /api/tags with the configured models.
func (s *Server) tags(w http.ResponseWriter) {
	resp := TagsResponse{Models: []ListedModel{}}
	for _, m := range append(slices.Clip(s.cfg.Models), s.cfg.EmbedModels...) {
		name := displayName(m)
		resp.Models = append(resp.Models, ListedModel{
			Name:       name,
			Model:      name,
			ModifiedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
			Size:       4_683_087_332,
			Digest:     fmt.Sprintf("%064x", len(name)),
			Details: ModelDetails{Format: "gguf", Family: "llama", Families: []string{"llama"},
				ParameterSize: "8B", QuantizationLevel: "Q4_K_M"},
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}
