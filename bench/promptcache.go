package bench

import (
	"container/list"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// CacheSpec describes a simulated Ollama host with a prompt cache, as
// llama.cpp keeps one: the prompt of a chat whose earlier turns the host
// served recently is mostly processed already, so its first token comes
// sooner.
type CacheSpec struct {
	Name string `json:"name"`
	// Parallel is OLLAMA_NUM_PARALLEL: chats generating at once; more
	// wait for a slot.
	Parallel int `json:"parallel"`
	// TTFT is Base plus Prefill for each message of the prompt not in the
	// cache; then the chat's tokens come at TokensPerSecond.
	Base            time.Duration `json:"base"`
	Prefill         time.Duration `json:"prefill"`
	TokensPerSecond float64       `json:"tokens_per_second"`
	// Entries bounds the prompts the cache remembers (least recently used
	// go first). 0: no cache, every message is processed.
	Entries int `json:"entries"`
}

// CacheHost is a simulated Ollama host with a prompt cache: POST /api/chat
// ("stream": false) with messages. The cache remembers, per served chat,
// the hash of its messages followed by its reply; a chat whose messages
// before the last one are remembered is a hit (only the new message is
// processed), one with a shorter remembered prefix is partial, else cold.
type CacheHost struct {
	spec  CacheSpec
	ln    net.Listener
	srv   *http.Server
	slots chan struct{}

	mu    sync.Mutex
	lru   *list.List // of uint64 prefix hashes, most recent first
	index map[uint64]*list.Element

	turns, first, hits, partial atomic.Int64
}

// CacheStats are a CacheHost's counts: chats served, those that began a
// conversation (one user message), and of the others those the cache held
// entirely (hits) or in part.
type CacheStats struct {
	Turns   int64 `json:"turns"`
	First   int64 `json:"first"`
	Hits    int64 `json:"hits"`
	Partial int64 `json:"partial"`
}

// StartCacheHost starts a simulated host on a free loopback port.
func StartCacheHost(spec CacheSpec) (*CacheHost, error) {
	if spec.Parallel <= 0 || spec.TokensPerSecond <= 0 {
		return nil, fmt.Errorf("bench: host %q needs parallel and tokens_per_second above 0", spec.Name)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: cache host %s: %w", spec.Name, err)
	}
	h := &CacheHost{spec: spec, ln: ln, slots: make(chan struct{}, spec.Parallel), lru: list.New(), index: map[uint64]*list.Element{}}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

// URL is the api_base.
func (h *CacheHost) URL() string { return "http://" + h.ln.Addr().String() }

// Close stops the host.
func (h *CacheHost) Close() { _ = h.srv.Close() }

// Stats returns the counts now.
func (h *CacheHost) Stats() CacheStats {
	return CacheStats{Turns: h.turns.Load(), First: h.first.Load(), Hits: h.hits.Load(), Partial: h.partial.Load()}
}

type cacheChat struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	Options struct {
		NumPredict int `json:"num_predict"`
	} `json:"options"`
}

// cacheReply is what the host answers every chat: the next turn of a
// conversation carries it as the assistant message.
const cacheReply = "ok"

func (h *CacheHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/chat":
	case "/api/tags":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"models":[{"name":"bench:latest","model":"bench:latest"}]}`)
		return
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var req cacheChat
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		ollamaError(w, http.StatusBadRequest, err.Error())
		return
	}
	n := len(req.Messages)
	if n == 0 {
		ollamaError(w, http.StatusBadRequest, "messages required")
		return
	}
	users := 0
	prefix := make([]uint64, n+2) // prefix[k]: hash of the first k messages
	hs := fnv.New64a()
	for i, m := range req.Messages {
		if m.Role != "system" && m.Role != "user" && m.Role != "assistant" && m.Role != "tool" {
			ollamaError(w, http.StatusBadRequest, "invalid role: "+m.Role)
			return
		}
		if m.Role == "user" {
			users++
		}
		prefix[i+1] = addMessage(hs, m.Role, m.Content)
	}
	prefix[n+1] = addMessage(hs, "assistant", cacheReply)
	tokens := req.Options.NumPredict
	if tokens <= 0 {
		tokens = 16
	}
	select {
	case h.slots <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	defer func() { <-h.slots }()
	cached := h.lookup(prefix[1:n])
	h.turns.Add(1)
	switch {
	case users <= 1:
		h.first.Add(1)
	case cached == n-1:
		h.hits.Add(1)
	case cached > 0:
		h.partial.Add(1)
	}
	took := h.spec.Base + time.Duration(n-cached)*h.spec.Prefill + time.Duration(float64(tokens)/h.spec.TokensPerSecond*float64(time.Second))
	t := time.NewTimer(took)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
		return
	}
	h.remember(prefix[n+1])
	b := make([]byte, 0, 256)
	b = append(b, `{"model":`...)
	b = strconv.AppendQuote(b, req.Model)
	b = append(b, `,"created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"`+cacheReply+`"},"done":true,"done_reason":"stop","prompt_eval_count":`...)
	b = strconv.AppendInt(b, int64(n-cached), 10)
	b = append(b, `,"eval_count":`...)
	b = strconv.AppendInt(b, int64(tokens), 10)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

// addMessage adds a message to a running hash and returns the hash of the
// messages so far.
func addMessage(hs interface {
	Write([]byte) (int, error)
	Sum64() uint64
}, role, content string) uint64 {
	_, _ = hs.Write([]byte(role))
	_, _ = hs.Write([]byte{0})
	_, _ = hs.Write([]byte(content))
	_, _ = hs.Write([]byte{0xff})
	return hs.Sum64()
}

// lookup returns the length of the longest remembered prefix among
// prefixes (prefixes[k-1] is the hash of the first k messages), 0 for
// none; a hit counts as a use.
func (h *CacheHost) lookup(prefixes []uint64) int {
	if h.spec.Entries <= 0 {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := len(prefixes); k > 0; k-- {
		if e, ok := h.index[prefixes[k-1]]; ok {
			h.lru.MoveToFront(e)
			return k
		}
	}
	return 0
}

// remember adds a served chat's prompt and reply to the cache.
func (h *CacheHost) remember(sum uint64) {
	if h.spec.Entries <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.index[sum]; ok {
		h.lru.MoveToFront(e)
		return
	}
	h.index[sum] = h.lru.PushFront(sum)
	for h.lru.Len() > h.spec.Entries {
		old := h.lru.Back()
		h.lru.Remove(old)
		delete(h.index, old.Value.(uint64))
	}
}
