package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// HeaderErrorCode is the HTTP response header that carries the llmq error
// code of a failed request (the body's "code" uses OpenAI's name where
// OpenAI has one).
const HeaderErrorCode = "Llmq-Error-Code"

// Handler returns the gateway's HTTP handler:
//
//	POST /v1/chat/completions   a job on NATS; JSON, or SSE with "stream": true
//	POST /v1/embeddings         an embedding job on NATS (OpenAI's shape)
//	GET  /v1/models             the tiers
//	GET  /v1/models/{model}     one tier, or 404
//	GET  /health                200 {"status":"ok"}, without a key
//
// Every error is OpenAI's {"error":{"message","type","param","code"}}.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", g.completions) // checks the key itself, to count refusals
	mux.HandleFunc("/v1/embeddings", g.embeddings)
	mux.HandleFunc("/v1/models", g.auth(g.models))
	mux.HandleFunc("/v1/models/{model...}", g.auth(g.model))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, apiError{Message: "Unknown request URL: " + r.Method + " " + r.URL.Path, Type: schema.TypeInvalidRequest, Code: "unknown_url"})
	})
	return mux
}

// apiError is OpenAI's error object.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// bufs are the buffers of request bodies and JSON answers, reused: a
// request otherwise grows a fresh body buffer from 512 bytes and encodes
// its answer into another.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf is the largest buffer put back in bufs, so that one huge
// request does not stay in memory.
const maxPooledBuf = 64 << 10

func getBuf() *bytes.Buffer {
	b := bufs.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		bufs.Put(b)
	}
}

var jsonContentType = []string{"application/json"}

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := getBuf()
	defer putBuf(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"message":"response could not be encoded","type":"api_error","param":null,"code":"internal"}}` + "\n")
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(buf.Len())}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, e apiError) {
	writeJSON(w, status, map[string]apiError{"error": e})
}

// auth asks for one of the keys, when the gateway has any.
func (g *Gateway) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if g.authorized(w, r) {
			next(w, r)
		}
	}
}

// CodeInvalidKey is the code of a request refused for want of a valid key.
const CodeInvalidKey = "invalid_api_key"

// authorized checks the request's bearer key; without one of the keys it
// answers 401 and returns false.
func (g *Gateway) authorized(w http.ResponseWriter, r *http.Request) bool {
	if len(g.keys) == 0 {
		return true
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		writeError(w, http.StatusUnauthorized, apiError{Message: "You didn't provide an API key: send Authorization: Bearer <key>.", Type: schema.TypeInvalidRequest, Code: CodeInvalidKey})
		return false
	}
	match := 0
	for _, k := range g.keys {
		match |= subtle.ConstantTimeCompare([]byte(key), k)
	}
	if match != 1 {
		writeError(w, http.StatusUnauthorized, apiError{Message: "Incorrect API key provided.", Type: schema.TypeInvalidRequest, Code: CodeInvalidKey})
		return false
	}
	return true
}

// model is one entry of /v1/models.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (g *Gateway) modelOf(tier string) model {
	return model{ID: tier, Object: "model", Created: g.started.Unix(), OwnedBy: "llmq"}
}

func (g *Gateway) models(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	tiers := g.listed()
	data := make([]model, len(tiers))
	for i, t := range tiers {
		data[i] = g.modelOf(t)
	}
	writeJSON(w, http.StatusOK, struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{"list", data})
}

func (g *Gateway) model(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	name := r.PathValue("model")
	if !g.known(name) {
		writeError(w, http.StatusNotFound, apiError{Message: "The model `" + truncate(name, 64) + "` does not exist (see GET /v1/models).", Type: schema.TypeInvalidRequest, Code: "model_not_found"})
		return
	}
	writeJSON(w, http.StatusOK, g.modelOf(name))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, apiError{Message: r.Method + " is not allowed on " + r.URL.Path + ": use " + allow + ".", Type: schema.TypeInvalidRequest, Code: "method_not_allowed"})
}

// request is one chat-completion request in progress.
type request struct {
	g      *Gateway
	w      http.ResponseWriter
	start  time.Time
	model  string
	report RequestReport
	wrote  bool
}

// completions serves POST /v1/chat/completions.
func (g *Gateway) completions(w http.ResponseWriter, r *http.Request) { g.job(w, r, false) }

// embeddings serves POST /v1/embeddings: the body is OpenAI's (model,
// input as a string or an array of strings, dimensions,
// encoding_format), the job an embedding job (docs/protocol.md), the
// reply OpenAI's list of embeddings plus llmq's routing block.
func (g *Gateway) embeddings(w http.ResponseWriter, r *http.Request) { g.job(w, r, true) }

// hasInput tells whether a JSON body has an input field (an embeddings
// request), without decoding the rest.
type hasInput struct {
	Input json.RawMessage `json:"input"`
}

// job serves a chat-completions request, or an embeddings request when
// embedding is set.
func (g *Gateway) job(w http.ResponseWriter, r *http.Request, embedding bool) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	q := &request{g: g, w: w, start: time.Now()}
	g.stats.started()
	if o := g.cfg.Observer; o != nil {
		o.RequestStarted()
	}
	defer q.done(r.Context())
	if !g.authorized(w, r) {
		q.report.Status, q.report.Code, q.wrote = http.StatusUnauthorized, CodeInvalidKey, true
		return
	}

	body := getBuf()
	_, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		putBuf(body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			q.fail(schema.Errorf(schema.CodePayloadTooLarge, "request body over %d bytes", tooBig.Limit))
			return
		}
		q.fail(schema.Errorf(schema.CodeBadRequest, "reading the request body: %v", err))
		return
	}
	if embedding {
		var probe hasInput
		if json.Unmarshal(body.Bytes(), &probe) == nil && (len(probe.Input) == 0 || string(probe.Input) == "null") {
			putBuf(body)
			q.fail(schema.NewError(schema.CodeBadRequest, "input: required: the texts to embed, a string or an array of strings (chat jobs go to /v1/chat/completions)"))
			return
		}
	}
	req, err := schema.DecodeRequest(schema.JSON, body.Bytes()) // copies what it keeps
	putBuf(body)
	if err != nil {
		q.fail(schema.AsError(err))
		return
	}
	if !embedding && req.IsEmbedding() {
		q.fail(schema.NewError(schema.CodeBadRequest, "input: an embeddings request: send it to /v1/embeddings (chat completions take messages)"))
		return
	}
	if req.Model == "" {
		q.fail(schema.NewError(schema.CodeBadRequest, "you must provide a model parameter: the tier to run the job on"))
		return
	}
	if !broker.ValidTier(req.Model) {
		// Checked before the model becomes a subject: NATS closes the
		// connection of a client that publishes on a subject over its
		// protocol line limit, which would fail every later request.
		q.fail(schema.Errorf(schema.CodeUnknownTier, "The model %.64q does not exist: a model names an llmq tier, at most %d bytes without spaces, wildcards or empty tokens.", req.Model, broker.MaxTierLen))
		return
	}
	q.model = req.Model
	q.report.Stream = req.Stream
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	defer cancel()
	if embedding {
		resp, err := g.embed(ctx, req.Model, req)
		if err != nil {
			q.fail(schema.AsError(err))
			return
		}
		for i := range resp.Data {
			// Decoding read a base64 vector into floats: write it as asked.
			resp.Data[i].Embedding.Encode(req.EncodingFormat)
		}
		q.report.Routing = resp.Routing
		q.report.Status = http.StatusOK
		q.wrote = true
		writeJSON(w, http.StatusOK, resp)
		return
	}
	if !req.Stream {
		resp, err := g.complete(ctx, req.Model, req)
		if err != nil {
			q.fail(schema.AsError(err))
			return
		}
		q.report.Routing = resp.Routing
		q.report.Status = http.StatusOK
		q.wrote = true
		writeJSON(w, http.StatusOK, resp)
		return
	}
	q.stream(ctx, req, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
}

// stream answers a streamed request with server-sent events: a data line
// per chunk, then "data: [DONE]". An error before the first chunk is an
// ordinary HTTP error; after it, a data line {"error":{...}} ends the
// stream.
func (q *request) stream(ctx context.Context, req *schema.Request, includeUsage bool) {
	s, err := q.g.client.Stream(ctx, req.Model, req)
	if err != nil {
		q.fail(schema.AsError(err))
		return
	}
	defer s.Close()
	rc := http.NewResponseController(q.w)
	for {
		c, last, err := s.Next()
		if err != nil {
			e := schema.AsError(err)
			if !q.wrote {
				q.fail(e)
				return
			}
			q.report.Code = e.Code
			_, body := errorBody(e)
			q.event(rc, map[string]apiError{"error": body})
			return
		}
		if !q.wrote {
			h := q.w.Header()
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
			q.w.WriteHeader(http.StatusOK)
			q.wrote = true
			q.report.Status = http.StatusOK
			q.report.TTFT = time.Since(q.start)
		}
		if !last {
			if !q.event(rc, c) {
				return
			}
			continue
		}
		usage := c.Usage
		c.Usage = nil
		q.report.Routing = c.Routing
		ok := q.event(rc, c)
		if ok && includeUsage && usage != nil {
			ok = q.event(rc, &schema.Chunk{ID: c.ID, Object: c.Object, Created: c.Created, Model: c.Model, Choices: []schema.ChunkChoice{}, Usage: usage})
		}
		if ok {
			_, _ = io.WriteString(q.w, "data: [DONE]\n\n")
			_ = rc.Flush()
		}
		return
	}
}

// event writes one SSE data line and flushes it; false when the client is
// gone.
func (q *request) event(rc *http.ResponseController, v any) bool {
	var buf bytes.Buffer
	buf.WriteString("data: ")
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return false
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	buf.WriteString("\n\n")
	if _, err := q.w.Write(buf.Bytes()); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// fail answers the request with e.
func (q *request) fail(e *schema.Error) {
	status, body := errorBody(e)
	q.report.Status, q.report.Code = status, e.Code
	if ms := e.RetryAfterMs; ms > 0 || status == http.StatusTooManyRequests {
		if ms <= 0 {
			ms = 1000
		}
		h := q.w.Header()
		h.Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(ms, 10))
	}
	q.w.Header().Set(HeaderErrorCode, e.Code)
	q.wrote = true
	writeError(q.w, status, body)
}

// done reports the request.
func (q *request) done(ctx context.Context) {
	switch {
	case ctx.Err() != nil && (q.report.Status == 0 || q.report.Code == schema.CodeCancelled):
		q.report.Status = 499 // the client went away: nobody saw a status
	case q.report.Status == 0:
		q.report.Status = http.StatusInternalServerError
	}
	// A tier that answered is real even when its first heartbeat had not
	// reached the gateway yet; the fleet admits it within its tiers cap, so
	// that the metrics' tier labels stay bounded. A name a wildcard tier
	// serves counts as that tier (names.go).
	if q.model != "" {
		q.report.Tier = q.g.label(q.model, q.report.Status == http.StatusOK)
	}
	q.report.Duration = time.Since(q.start)
	q.g.stats.finished(q.report.Status)
	if o := q.g.cfg.Observer; o != nil {
		o.RequestDone(q.report)
	}
}

// errorBody maps an llmq error to an HTTP status and OpenAI's error object.
//
// The status is the error's own, except that failures of a tier's
// deployment that say nothing about the client's request — the provider
// refused the deployment's key (authentication) or does not know its model
// (not_found) — are 502: a 401 or 404 would tell an OpenAI client that its
// own key or model name is wrong. cancelled (a worker stopped mid-job) is
// 503, a status clients retry.
func errorBody(e *schema.Error) (int, apiError) {
	status := e.Status
	typ, code := e.Type, e.Code
	switch e.Code {
	case schema.CodeAuthentication, schema.CodeNotFound:
		status, typ = http.StatusBadGateway, schema.TypeAPI
	case schema.CodeCancelled:
		status = http.StatusServiceUnavailable
	case schema.CodeUnknownTier:
		code = "model_not_found"
	case schema.CodeContextWindowExceeded:
		code = "context_length_exceeded"
	case schema.CodeRateLimited:
		code = "rate_limit_exceeded"
	}
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	var param *string
	if e.Code == schema.CodeUnknownTier {
		p := "model"
		param = &p
	}
	return status, apiError{Message: e.Message, Type: typ, Param: param, Code: code}
}
