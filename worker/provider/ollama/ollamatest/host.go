package ollamatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// DefaultKeepAlive is how long Ollama keeps a model loaded after its last
// call when the request sets no keep_alive (OLLAMA_KEEP_ALIVE's default).
const DefaultKeepAlive = 5 * time.Minute

// DefaultHostQueue is Ollama's OLLAMA_MAX_QUEUE default: the requests that
// may wait, in the host model, before one more is answered 503.
const DefaultHostQueue = 512

// errClosed ends the waits of requests when the server closes.
var errClosed = errors.New("ollamatest: server closed")

// runner is a loaded (or loading) model in the host model, as Ollama's
// scheduler keeps one llama server per model.
type runner struct {
	name      string // displayName, lower case
	loading   bool
	refs      int           // calls holding the model (generating or waiting for a slot)
	slots     chan struct{} // Parallel slots; nil means no limit
	lastUsed  time.Time
	keepAlive time.Duration // < 0: forever; 0: unload when refs reach 0
	expires   time.Time     // set when refs reach 0
}

// ticket is a request waiting in the host's FIFO of pending requests.
type ticket struct{ model string }

// host is the host model's state, guarded by Server.mu.
type host struct {
	loaded  map[string]*runner
	pending []*ticket
	waiting int // requests pending or waiting for a slot
}

// hostMode reports whether the fake runs the host model (Config.MaxLoaded).
func (s *Server) hostMode() bool { return s.cfg.MaxLoaded > 0 }

// parseKeepAlive reads a checked keep_alive: a duration string or seconds;
// absent means DefaultKeepAlive (or Config.KeepAlive); negative forever.
func (s *Server) parseKeepAlive(raw json.RawMessage) time.Duration {
	def := DefaultKeepAlive
	if s.cfg.KeepAlive != 0 {
		def = s.cfg.KeepAlive
	}
	if len(raw) == 0 || string(raw) == "null" {
		return def
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return def
	}
	switch t := v.(type) {
	case float64:
		return time.Duration(t * float64(time.Second))
	case string:
		if d, err := time.ParseDuration(t); err == nil {
			return d
		}
	}
	return def
}

// acquire is the host model's admission, after Ollama's scheduler: requests
// wait in one FIFO; the head takes its model if it is loaded, loads it
// (LoadTime) when there is room for one more model, or else evicts the
// least recently used model with no call in flight, waiting until one has
// none. A request behind the head waits, even for a loaded model, as in
// Ollama, whose scheduler serves pending requests in order. Once its model
// is loaded the request takes one of the model's Parallel slots. It
// returns the release to call when the call ends, whether the call found
// its model cold, and the time the load took.
func (s *Server) acquire(ctx context.Context, name string, keepAlive time.Duration) (release func(), loadTook time.Duration, err error) {
	name = strings.ToLower(displayName(name))
	t := &ticket{model: name}
	s.mu.Lock()
	limit := s.cfg.MaxQueue
	if limit <= 0 {
		limit = DefaultHostQueue
	}
	if s.host.waiting >= limit {
		s.mu.Unlock()
		s.update(func(st *Stats) { st.Busy++ })
		return nil, 0, errBusy
	}
	s.host.waiting++
	s.host.pending = append(s.host.pending, t)
	s.mu.Unlock()
	s.update(func(st *Stats) { st.Queued++ })

	leave := func() {
		s.mu.Lock()
		s.host.waiting--
		for i, p := range s.host.pending {
			if p == t {
				s.host.pending = append(s.host.pending[:i], s.host.pending[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
		s.update(func(st *Stats) { st.Queued-- })
	}

	var r *runner
	for {
		s.mu.Lock()
		ch := s.changed
		if s.host.pending[0] == t {
			s.expire(time.Now())
			r = s.host.loaded[name]
			switch {
			case r != nil && !r.loading:
				// Loaded: the head takes it and the next may go.
			case r == nil && s.roomFor():
				r = s.load(name)
			default:
				r = nil // loading, or no room yet: wait for a change
			}
			if r != nil {
				s.host.pending = s.host.pending[1:]
				r.refs++
				r.keepAlive = keepAlive
			}
		}
		s.mu.Unlock()
		if r != nil {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			leave()
			s.update(func(st *Stats) { st.Disconnected++ })
			return nil, 0, ctx.Err()
		case <-s.done:
			leave()
			return nil, 0, errClosed
		}
	}
	// The runner is ours (refs counts us); load it if we are the one who
	// found it cold.
	unref := func() {
		s.mu.Lock()
		s.host.waiting--
		s.unref(r)
		s.mu.Unlock()
		s.update(func(st *Stats) { st.Queued-- })
	}
	if r.loading {
		start := time.Now()
		if !s.sleep(ctx, s.cfg.LoadTime) {
			s.mu.Lock()
			delete(s.host.loaded, r.name) // the load was abandoned
			s.mu.Unlock()
			unref()
			s.update(func(st *Stats) { st.Disconnected++ })
			return nil, 0, context.Cause(ctx)
		}
		loadTook = time.Since(start)
		s.mu.Lock()
		r.loading = false
		s.mu.Unlock()
		s.update(func(st *Stats) { st.Loads++ })
	}
	if r.slots != nil {
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			unref()
			s.update(func(st *Stats) { st.Disconnected++ })
			return nil, 0, ctx.Err()
		case <-s.done:
			unref()
			return nil, 0, errClosed
		}
	}
	s.mu.Lock()
	s.host.waiting--
	s.mu.Unlock()
	s.update(func(st *Stats) { st.Queued--; st.InFlight++ })
	return func() {
		s.update(func(st *Stats) { st.InFlight-- })
		if r.slots != nil {
			<-r.slots
		}
		s.mu.Lock()
		s.unref(r)
		s.mu.Unlock()
		s.update(func(*Stats) {})
	}, loadTook, nil
}

// roomFor reports whether one more model fits, evicting the least recently
// used model without calls when the host is full. Called with s.mu held.
func (s *Server) roomFor() bool {
	if len(s.host.loaded) < s.cfg.MaxLoaded {
		return true
	}
	var lru *runner
	for _, r := range s.host.loaded {
		if r.refs == 0 && !r.loading && (lru == nil || r.lastUsed.Before(lru.lastUsed)) {
			lru = r
		}
	}
	if lru == nil {
		return false
	}
	delete(s.host.loaded, lru.name)
	s.stats.Unloads++
	return true
}

// load adds a runner in its loading state. Called with s.mu held.
func (s *Server) load(name string) *runner {
	r := &runner{name: name, loading: true, lastUsed: time.Now()}
	if s.cfg.Parallel > 0 {
		r.slots = make(chan struct{}, s.cfg.Parallel)
	}
	s.host.loaded[name] = r
	return r
}

// unref ends one call's hold on r: a model whose keep_alive is 0 is
// unloaded when its last call ends; any other expires keep_alive later.
// Called with s.mu held; the caller wakes waiters (s.update).
func (s *Server) unref(r *runner) {
	r.refs--
	now := time.Now()
	r.lastUsed = now
	if r.refs > 0 {
		return
	}
	switch {
	case r.keepAlive == 0:
		if s.host.loaded[r.name] == r {
			delete(s.host.loaded, r.name)
			s.stats.Unloads++
		}
	case r.keepAlive > 0:
		r.expires = now.Add(r.keepAlive)
	default:
		r.expires = time.Time{}
	}
}

// expire unloads idle models whose keep_alive has passed. Called with s.mu
// held.
func (s *Server) expire(now time.Time) {
	for name, r := range s.host.loaded {
		if r.refs == 0 && !r.loading && !r.expires.IsZero() && now.After(r.expires) {
			delete(s.host.loaded, name)
			s.stats.Unloads++
		}
	}
}

// sleep waits d; false when ctx or the server ends first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// Loaded returns the models the host has loaded now (not those loading),
// sorted, as /api/ps names them. Without the host model every model is.
func (s *Server) Loaded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hostMode() {
		var out []string
		for _, m := range s.cfg.Models {
			out = append(out, displayName(m))
		}
		sort.Strings(out)
		return out
	}
	s.expire(time.Now())
	var out []string
	for name, r := range s.host.loaded {
		if !r.loading {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// ps answers GET /api/ps: the loaded models, each with when it expires.
func (s *Server) ps(w http.ResponseWriter) {
	resp := PsResponse{Models: []RunningModel{}}
	now := time.Now()
	s.mu.Lock()
	type entry struct {
		name    string
		expires time.Time
	}
	var list []entry
	if s.hostMode() {
		s.expire(now)
		for name, r := range s.host.loaded {
			if r.loading {
				continue
			}
			exp := r.expires
			switch {
			case r.keepAlive < 0:
				exp = now.AddDate(100, 0, 0) // Ollama's "forever"
			case exp.IsZero() || r.refs > 0:
				exp = now.Add(max(r.keepAlive, 0))
			}
			list = append(list, entry{name, exp})
		}
	} else {
		for _, m := range s.cfg.Models {
			list = append(list, entry{displayName(m), now.Add(DefaultKeepAlive)})
		}
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	for _, e := range list {
		resp.Models = append(resp.Models, RunningModel{
			Name: e.name, Model: e.name, Size: 9_000_000_000, SizeVRAM: 9_000_000_000,
			Digest:    fmt.Sprintf("%064x", len(e.name)),
			Details:   ModelDetails{Format: "gguf", Family: "llama", Families: []string{"llama"}, ParameterSize: "8B", QuantizationLevel: "Q4_K_M"},
			ExpiresAt: e.expires.UTC(),
		})
	}
	writeJSON(w, http.StatusOK, resp)
}
