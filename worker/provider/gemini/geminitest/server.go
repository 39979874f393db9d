package geminitest

import (
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultKey is the API key the fake requires when Config.Key is empty.
const DefaultKey = "test-gemini-key"

// Config sets the fake's behaviour. The zero value answers every valid
// call normally with "echo: <last user text>".
type Config struct {
	// Key is the API key the fake requires in x-goog-api-key. Default
	// DefaultKey.
	Key string
	// Models, when not empty, are the only model names the fake knows;
	// others get 404 NOT_FOUND.
	Models []string
	// ModelVersion is the modelVersion the fake reports. Default: the model
	// of the path.
	ModelVersion string
	// Reply is the text the model answers. Default "echo: " followed by the
	// text of the last user content.
	Reply string
	// Calls are the function calls the model makes (several: parallel
	// calls) when the request declares the functions named and lets the
	// model call them — not with mode NONE, not with a function name the
	// mode ANY does not allow, and under AUTO not in answer to a turn of
	// function responses (the model then answers with text). With mode
	// ANY and no call left, the model calls the first allowed function
	// with no arguments.
	Calls []Call
	// EmbedDimensions is the size of the fake's embeddings. Default 768.
	EmbedDimensions int
	// FinishReason overrides the candidate's finishReason (e.g. "SAFETY").
	// Default STOP, or MAX_TOKENS when maxOutputTokens cut the reply.
	FinishReason string
	// BlockReason, when set, blocks every prompt: 200 with
	// promptFeedback.blockReason and no candidates.
	BlockReason string
	// ContextWindow, when > 0, is the model's input limit in tokens
	// (words): longer prompts get the API's 400 "input token count exceeds
	// the maximum" error.
	ContextWindow int
	// Fail, when set, answers every valid call with this error.
	Fail *Failure
	// FailMidStream, when set, breaks streams part-way.
	FailMidStream *MidStream
	// Delay is waited before each stream chunk, and before a non-streamed
	// reply, so that time-outs and cancellation can be tested. The wait
	// ends early when the client goes away.
	Delay time.Duration
	// ChunkWords is how many words each stream chunk carries. Default 1.
	ChunkWords int
}

// Call is a function call the fake model makes.
type Call struct {
	// ID, when set, is sent as functionCall.id, as newer API versions do.
	ID string
	// Name is the function called.
	Name string
	// Args is the arguments, a JSON object. Default {}.
	Args string
	// ThoughtSignature, when set, is sent on the call's part, as thinking
	// models do. For models named gemini-3… the fake then requires it back
	// on the call in the next request, as Gemini 3 does.
	ThoughtSignature string
}

// MidStream describes how a stream breaks.
type MidStream struct {
	// After is how many chunks are sent before the break. The final chunk
	// (the one with the finish reason) is never sent.
	After int
	// Error, when set, is sent as an SSE event {"error":{...}} before the
	// stream ends, as the API reports errors after the stream began.
	Error *Failure
	// Clean ends the response normally (no error event) instead of
	// dropping the connection; either way no finish reason arrives.
	Clean bool
	// Endless, instead, never ends the stream: it sends the answer's text
	// again and again, chunk after chunk without a finish reason, as fast
	// as the client reads, until the client goes away.
	Endless bool
}

// Recorded is one request the fake received.
type Recorded struct {
	Method string
	// Path is the URL path, e.g. "/v1beta/models/gemini-2.0-flash:generateContent".
	Path string
	// Query is the URL's query parameters.
	Query url.Values
	// Header holds the request headers.
	Header http.Header
	// Body is the decoded request, nil when the body was not valid.
	Body *Request
	// Embed is the decoded batchEmbedContents request, nil for other
	// calls or an invalid body.
	Embed *EmbedRequest
	// Raw is the body as sent.
	Raw []byte
}

// Server is a running fake. It is safe for concurrent requests.
type Server struct {
	cfg  Config
	srv  *httptest.Server
	once sync.Once

	mu       sync.Mutex
	requests []Recorded
	seq      int
	gone     chan struct{} // closed at the first client disconnect
	goneOnce sync.Once
	goneN    int
}

// NewServer starts a fake on 127.0.0.1 and closes it when the test ends.
func NewServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s := Start(cfg)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake on 127.0.0.1; the caller must Close it. Tests should
// prefer NewServer.
func Start(cfg Config) *Server {
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.ChunkWords <= 0 {
		cfg.ChunkWords = 1
	}
	if cfg.EmbedDimensions <= 0 {
		cfg.EmbedDimensions = 768
	}
	cfg.Models = slices.Clone(cfg.Models)
	cfg.Calls = slices.Clone(cfg.Calls)
	s := &Server{cfg: cfg, gone: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL returns the api_base to configure: the host root, without the
// version path ("http://127.0.0.1:port").
func (s *Server) URL() string { return s.srv.URL }

// Key returns the API key the fake requires.
func (s *Server) Key() string { return s.cfg.Key }

// Close stops the fake, waiting for running requests; later calls do
// nothing. Calls after Close are refused at the TCP level.
func (s *Server) Close() {
	s.once.Do(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Requests returns a copy of the requests received so far, in order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.requests))
	for i, r := range s.requests {
		r.Query = cloneValues(r.Query)
		r.Header = r.Header.Clone()
		r.Raw = slices.Clone(r.Raw)
		out[i] = r
	}
	return out
}

// Disconnected returns a channel closed once a client went away before
// its reply was complete (e.g. a cancelled stream).
func (s *Server) Disconnected() <-chan struct{} { return s.gone }

// Disconnects counts the replies clients abandoned.
func (s *Server) Disconnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.goneN
}

func (s *Server) clientGone() {
	s.mu.Lock()
	s.goneN++
	s.mu.Unlock()
	s.goneOnce.Do(func() { close(s.gone) })
}

func (s *Server) record(r *http.Request, raw []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Recorded{
		Method: r.Method, Path: r.URL.Path, Query: cloneValues(r.URL.Query()),
		Header: r.Header.Clone(), Raw: raw,
	})
	return len(s.requests) - 1
}

func (s *Server) setBody(i int, req *Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[i].Body = req
}

func (s *Server) setEmbed(i int, req *EmbedRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[i].Embed = req
}

func (s *Server) nextID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

// serve checks a call in the order the API does — route, key, body — then
// answers it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return
	}
	i := s.record(r, raw)

	model, method, ok := route(r.URL.Path)
	if !ok || r.Method != http.MethodPost {
		writeNotFoundPage(w, r.URL.Path)
		return
	}
	q := r.URL.Query()
	if q.Has("key") {
		InvalidArgument("geminitest: the API key must travel in the x-goog-api-key header, not in the URL").write(w)
		return
	}
	for name := range q {
		if name != "alt" && name != "$alt" && name != "prettyPrint" {
			writeBadRequest(w, []violation{{Description: "Invalid JSON payload received. Unknown name \"" + name +
				"\": Cannot bind query parameter. Field '" + name + "' could not be found in request message."}})
			return
		}
	}
	switch key := r.Header.Get("X-Goog-Api-Key"); {
	case key == "":
		MissingKey().write(w)
		return
	case key != s.cfg.Key:
		InvalidKey().write(w)
		return
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		InvalidArgument("Invalid JSON payload received. Content-Type must be application/json.").write(w)
		return
	}
	if method == "batchEmbedContents" {
		if len(s.cfg.Models) > 0 && !slices.Contains(s.cfg.Models, model) {
			ModelNotFound(model).write(w)
			return
		}
		s.serveEmbed(w, r, raw, i, model)
		return
	}
	req, vs, fail := parseRequest(raw, model)
	if len(vs) > 0 {
		writeBadRequest(w, vs)
		return
	}
	if fail != nil {
		fail.write(w)
		return
	}
	s.setBody(i, req)
	if len(s.cfg.Models) > 0 && !slices.Contains(s.cfg.Models, model) {
		ModelNotFound(model).write(w)
		return
	}
	prompt := promptTokens(req)
	if s.cfg.ContextWindow > 0 && prompt > s.cfg.ContextWindow {
		TooManyTokens(prompt, s.cfg.ContextWindow).write(w)
		return
	}
	if s.cfg.Fail != nil {
		s.cfg.Fail.write(w)
		return
	}
	a := s.answer(model, req, prompt)
	if method == "streamGenerateContent" {
		alt := q.Get("alt")
		if alt == "" {
			alt = q.Get("$alt")
		}
		s.stream(w, r, a, alt == "sse")
		return
	}
	if !s.wait(r) {
		return
	}
	writeJSON(w, http.StatusOK, a.whole())
}

// route splits /v1beta/models/{model}:{method}; ok is false for any path
// the API does not serve.
func route(path string) (model, method string, ok bool) {
	rest, found := strings.CutPrefix(path, "/v1beta/models/")
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return "", "", false
	}
	model, method = rest[:i], rest[i+1:]
	switch method {
	case "generateContent", "streamGenerateContent", "batchEmbedContents":
	default:
		return "", "", false
	}
	if strings.Contains(model, "/") {
		return "", "", false
	}
	return model, method, true
}

// wait waits Config.Delay; it reports false (and notes the disconnect)
// when the client went away first.
func (s *Server) wait(r *http.Request) bool {
	if s.cfg.Delay <= 0 {
		return true
	}
	t := time.NewTimer(s.cfg.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		s.clientGone()
		return false
	}
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}
