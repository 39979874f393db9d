package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// HoldUser is the OpenAI "user" of a request OpenAIServer holds until
// Release: the memory section keeps jobs in flight with it.
const HoldUser = "hold"

// completionBody is the one reply OpenAIServer sends.
var completionBody = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`)

var (
	holdMarker    = []byte(`"user":"` + HoldUser + `"`)
	contentJSON   = []string{"application/json"}
	contentLength = []string{strconv.Itoa(len(completionBody))}
	bodyPool      = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// OpenAIServer is a fake OpenAI-compatible server built to cost as little
// as possible: POST {URL}/chat/completions reads the body and answers one
// fixed chat.completion, with no decoding. A request whose "user" is
// HoldUser waits until Release. GET /stats reports counts as JSON, POST
// /release releases (for a server in another process).
type OpenAIServer struct {
	ln     net.Listener
	srv    *http.Server
	served atomic.Int64
	held   atomic.Int64
	done   chan struct{}
	once   sync.Once

	gate        chan struct{} // closed by Release
	releaseOnce sync.Once
}

// OpenAIStats are an OpenAIServer's counts.
type OpenAIStats struct {
	Served int64 `json:"served"`
	Held   int64 `json:"held"`
}

// StartOpenAI starts a server on addr (default 127.0.0.1:0, a free
// loopback port).
func StartOpenAI(addr string) (*OpenAIServer, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: openai fake: %w", err)
	}
	s := &OpenAIServer{ln: ln, done: make(chan struct{}), gate: make(chan struct{})}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the api_base to configure: http://127.0.0.1:PORT/v1.
func (s *OpenAIServer) URL() string { return "http://" + s.ln.Addr().String() + "/v1" }

// Stats returns the counts now.
func (s *OpenAIServer) Stats() OpenAIStats {
	return OpenAIStats{Served: s.served.Load(), Held: s.held.Load()}
}

// Release answers every held request, and holds none from then on. Safe
// to call twice.
func (s *OpenAIServer) Release() {
	s.releaseOnce.Do(func() { close(s.gate) })
}

// Close stops the server, answering nothing more. Safe to call twice.
func (s *OpenAIServer) Close() {
	s.once.Do(func() {
		close(s.done)
		_ = s.srv.Close()
	})
}

func (s *OpenAIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/chat/completions":
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		buf := bodyPool.Get().(*bytes.Buffer)
		buf.Reset()
		_, err := buf.ReadFrom(io.LimitReader(r.Body, 1<<20))
		hold := bytes.Contains(buf.Bytes(), holdMarker)
		bodyPool.Put(buf)
		if err != nil {
			return
		}
		if hold {
			s.held.Add(1)
			select {
			case <-s.gate:
			case <-r.Context().Done():
			case <-s.done:
			}
			s.held.Add(-1)
		}
		h := w.Header()
		h["Content-Type"] = contentJSON
		h["Content-Length"] = contentLength
		_, _ = w.Write(completionBody)
		s.served.Add(1)
	case "/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	case "/release":
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.Release()
	default:
		http.NotFound(w, r)
	}
}

// openAIStats reads the counts of an OpenAIServer at api_base base (in
// another process).
func openAIStats(c *http.Client, base string) (OpenAIStats, error) {
	var st OpenAIStats
	resp, err := c.Get(rootOf(base) + "/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("bench: openai fake /stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// openAIRelease releases the held requests of an OpenAIServer in another
// process.
func openAIRelease(c *http.Client, base string) error {
	resp, err := c.Post(rootOf(base)+"/release", "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("bench: openai fake /release: " + resp.Status)
	}
	return nil
}

// rootOf drops the /v1 of an api_base.
func rootOf(base string) string {
	if n := len(base); n >= 3 && base[n-3:] == "/v1" {
		return base[:n-3]
	}
	return base
}
