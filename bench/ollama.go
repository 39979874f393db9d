package bench

import (
	"encoding/json"
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

// BusyMessage is Ollama's answer, with status 503, when its queue is full.
const BusyMessage = "server busy, please try again.  maximum pending requests exceeded"

// HostSpec describes a simulated Ollama host.
type HostSpec struct {
	Name string `json:"name"`
	// Parallel is OLLAMA_NUM_PARALLEL: chats generating at once.
	Parallel int `json:"parallel"`
	// MaxQueue is OLLAMA_MAX_QUEUE: chats that may wait for a slot; one
	// more is answered 503 BusyMessage.
	MaxQueue int `json:"max_queue"`
	// TTFT is the time to the first token; TokensPerSecond the speed
	// after it.
	TTFT            time.Duration `json:"ttft"`
	TokensPerSecond float64       `json:"tokens_per_second"`
}

// Service is how long the host takes to generate tokens.
func (h HostSpec) Service(tokens int) time.Duration {
	return h.TTFT + time.Duration(float64(tokens)/h.TokensPerSecond*float64(time.Second))
}

// Capacity is how many jobs a second the host completes when every slot is
// busy with jobs of meanTokens.
func (h HostSpec) Capacity(meanTokens float64) float64 {
	mean := h.TTFT.Seconds() + meanTokens/h.TokensPerSecond
	return float64(h.Parallel) / mean
}

// OllamaHost is a simulated Ollama host: POST /api/chat ("stream": false)
// takes one of Parallel slots for TTFT plus num_predict tokens at
// TokensPerSecond, or waits for one in a FIFO queue of MaxQueue, or is
// answered 503 when the queue is full, as Ollama does. GET /api/tags
// lists one model. It decodes only what it needs, so it is cheap next to
// what it simulates.
type OllamaHost struct {
	spec  HostSpec
	ln    net.Listener
	srv   *http.Server
	slots chan struct{}
	done  chan struct{}
	once  sync.Once

	waiting     atomic.Int64
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	maxWaiting  atomic.Int64
	served      atomic.Int64
	busy        atomic.Int64
	lateNs      atomic.Int64 // sum over served chats of actual minus nominal time
	busyNs      atomic.Int64 // sum over served chats of the time they held a slot
}

// HostStats are an OllamaHost's counts.
type HostStats struct {
	Served      int64 `json:"served"`
	Busy        int64 `json:"busy"`
	MaxInFlight int64 `json:"max_in_flight"`
	MaxWaiting  int64 `json:"max_waiting"`
	// LateUs is the mean time a served chat took beyond its nominal
	// service time (timer granularity and scheduling).
	LateUs float64 `json:"late_us"`
	// BusySeconds is the slot time served chats held.
	BusySeconds float64 `json:"busy_seconds"`
}

// StartOllama starts a simulated host on a free loopback port.
func StartOllama(spec HostSpec) (*OllamaHost, error) {
	if spec.Parallel <= 0 || spec.TokensPerSecond <= 0 {
		return nil, fmt.Errorf("bench: host %q needs parallel and tokens_per_second above 0", spec.Name)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: ollama host %s: %w", spec.Name, err)
	}
	h := &OllamaHost{spec: spec, ln: ln, slots: make(chan struct{}, spec.Parallel), done: make(chan struct{})}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

// URL is the api_base: the host root.
func (h *OllamaHost) URL() string { return "http://" + h.ln.Addr().String() }

// Spec returns the host's description.
func (h *OllamaHost) Spec() HostSpec { return h.spec }

// Stats returns the counts now.
func (h *OllamaHost) Stats() HostStats {
	s := HostStats{Served: h.served.Load(), Busy: h.busy.Load(), MaxInFlight: h.maxInFlight.Load(), MaxWaiting: h.maxWaiting.Load(),
		BusySeconds: float64(h.busyNs.Load()) / 1e9}
	if s.Served > 0 {
		s.LateUs = float64(h.lateNs.Load()) / float64(s.Served) / 1e3
	}
	return s
}

// InFlight and Waiting are the chats holding a slot and waiting for one.
func (h *OllamaHost) InFlight() int64 { return h.inFlight.Load() }

// Waiting is how many chats wait for a slot.
func (h *OllamaHost) Waiting() int64 { return h.waiting.Load() }

// Close stops the host. Safe to call twice.
func (h *OllamaHost) Close() {
	h.once.Do(func() {
		close(h.done)
		_ = h.srv.Close()
	})
}

type ollamaChat struct {
	Model    string `json:"model"`
	Messages []struct {
		Content string `json:"content"`
	} `json:"messages"`
	Options struct {
		NumPredict int `json:"num_predict"`
	} `json:"options"`
}

func (h *OllamaHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/chat":
	case "/api/tags":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"models":[{"name":"bench:latest","model":"bench:latest"}]}`)
		return
	case "/":
		_, _ = io.WriteString(w, "Ollama is running")
		return
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var req ollamaChat
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		ollamaError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Messages) == 0 {
		ollamaError(w, http.StatusBadRequest, "messages required")
		return
	}
	tokens := req.Options.NumPredict
	if tokens <= 0 {
		tokens = 16
	}
	if !h.admit(w, r) {
		return
	}
	defer func() {
		h.inFlight.Add(-1)
		<-h.slots
	}()
	raise(&h.maxInFlight, h.inFlight.Add(1))
	nominal := h.spec.Service(tokens)
	start := time.Now()
	t := time.NewTimer(nominal)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
		return
	case <-h.done:
		t.Stop()
		return
	}
	took := time.Since(start)
	h.lateNs.Add(int64(took - nominal))
	h.busyNs.Add(int64(took))
	b := make([]byte, 0, 320)
	b = append(b, `{"model":`...)
	b = strconv.AppendQuote(b, req.Model)
	b = append(b, `,"created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"ok"},"done":true,"done_reason":"stop","prompt_eval_count":8,"eval_count":`...)
	b = strconv.AppendInt(b, int64(tokens), 10)
	b = append(b, `,"total_duration":`...)
	b = strconv.AppendInt(b, int64(nominal), 10)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
	h.served.Add(1)
}

// admit takes a slot, waiting in the FIFO queue when there is room in it;
// it answers 503 and returns false when the queue is full.
func (h *OllamaHost) admit(w http.ResponseWriter, r *http.Request) bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
	}
	n := h.waiting.Add(1)
	if n > int64(h.spec.MaxQueue) {
		h.waiting.Add(-1)
		h.busy.Add(1)
		ollamaError(w, http.StatusServiceUnavailable, BusyMessage)
		return false
	}
	raise(&h.maxWaiting, n)
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}: // blocked senders are served in order
		return true
	case <-r.Context().Done():
	case <-h.done:
	}
	return false
}

func ollamaError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func raise(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}
