package ollama

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// ColdThreshold is the load_duration from which a call counts as having
// found its model cold (a warm call's is a few milliseconds).
const ColdThreshold = 100 * time.Millisecond

// maxPsBytes bounds the body of GET /api/ps.
const maxPsBytes = 1 << 20

var (
	_ provider.Resident = (*Provider)(nil)
	_ provider.Warmer   = (*Provider)(nil)
)

// Option configures an adapter beyond provider.Options.
type Option func(*Provider) error

// WithKeepAlive sends keep_alive with every call: how long the host keeps
// the model loaded after it ("5m", "1h", "-1" or a negative number for
// ever, "0" to unload at once; a bare number is seconds), as LiteLLM
// passes litellm_params.keep_alive. Empty sends none (the host's
// OLLAMA_KEEP_ALIVE applies).
func WithKeepAlive(v string) Option {
	return func(p *Provider) error {
		raw, err := keepAlive(v)
		if err != nil {
			return err
		}
		p.keepAlive = raw
		return nil
	}
}

// keepAlive returns v as Ollama takes it: a number of seconds, or a
// duration string.
func keepAlive(v string) (json.RawMessage, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return json.RawMessage(strconv.FormatFloat(f, 'f', -1, 64)), nil
	}
	if _, err := time.ParseDuration(v); err != nil {
		return nil, fmt.Errorf("ollama: keep_alive %q is neither a number of seconds nor a duration like 5m", v)
	}
	b, _ := json.Marshal(v)
	return b, nil
}

// residency is what the adapter knows of its host's loaded models: the
// last GET /api/ps, and what its own calls imply since.
type residency struct {
	mu       sync.Mutex
	known    bool
	loaded   []string // canonical names from the last /api/ps
	shown    []string // the same as the host names them
	polledAt time.Time
	calls    int       // calls running
	lastOK   time.Time // when the last call ended well
	loadTime time.Duration
	stale    bool
}

// begin notes a call starting.
func (r *residency) begin() {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
}

// end notes a call ending; load is the reply's load_duration (0 when the
// call failed).
func (r *residency) end(ok bool, load time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls--
	if !ok {
		return
	}
	r.known = true
	r.lastOK = time.Now()
	if load >= ColdThreshold {
		// A cold call: learn the load time, and look again at what the
		// host holds (loading may have evicted another model).
		if r.loadTime == 0 {
			r.loadTime = load
		} else {
			r.loadTime = (r.loadTime + load) / 2
		}
		r.stale = true
	}
}

// Residency reports whether the model is loaded: /api/ps listed it, or a
// call ran since (the host loads a model to answer), or one is running.
func (p *Provider) Residency() provider.Residency {
	r := &p.res
	r.mu.Lock()
	defer r.mu.Unlock()
	warm := r.calls > 0 || r.lastOK.After(r.polledAt) || slices.Contains(r.loaded, canonicalName(p.model))
	return provider.Residency{
		Known:    r.known || r.calls > 0,
		Warm:     warm,
		Loaded:   slices.Clone(r.shown),
		LoadTime: r.loadTime,
		Stale:    r.stale,
	}
}

// Refresh asks the host which models it has loaded (GET /api/ps), within
// ctx and at most the adapter's time-out. A host that cannot say (an old
// Ollama, a proxy without the path) leaves the adapter's knowledge as it
// was and returns the typed error.
func (p *Provider) Refresh(ctx context.Context) error {
	ctx, cancel := provider.CallContext(ctx, p.o.Timeout)
	defer cancel()
	started := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/ps", nil)
	if err != nil {
		return schema.Errorf(schema.CodeInternal, "%s: build request: %v", Name, err)
	}
	for k, v := range p.headers("application/json") {
		req.Header[k] = v
	}
	resp, err := p.o.HTTP.Do(req)
	if err != nil {
		return p.clean(provider.TransportError(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := p.httpError(resp)
		e.Message = fmt.Sprintf("%s (listing loaded models: GET %s/api/ps)", e.Message, p.host)
		return e
	}
	var ps struct {
		Models []struct {
			Name  string `json:"name"`
			Model string `json:"model"`
		} `json:"models"`
	}
	if err := json.NewDecoder(provider.LimitReader(resp.Body, maxPsBytes, "loaded model list")).Decode(&ps); err != nil {
		return p.readError(ctx, err)
	}
	var loaded, shown []string
	for _, m := range ps.Models {
		name := m.Name
		if name == "" {
			name = m.Model
		}
		if name == "" || len(name) > provider.MaxResidentName {
			continue
		}
		if len(shown) == provider.MaxResident {
			break
		}
		loaded = append(loaded, canonicalName(name))
		shown = append(shown, name)
	}
	r := &p.res
	r.mu.Lock()
	r.known, r.loaded, r.shown, r.polledAt, r.stale = true, loaded, shown, started, false
	r.mu.Unlock()
	return nil
}

// Warm loads the model on the host before any job (POST /api/chat with no
// messages, and the configured keep_alive), as Ollama documents for
// preloading a model.
func (p *Provider) Warm(ctx context.Context) error {
	ctx, cancel := provider.CallContext(ctx, p.o.Timeout)
	defer cancel()
	body := &chatRequest{Model: p.model, Messages: []chatMessage{}, KeepAlive: p.keepAlive}
	p.res.begin()
	resp, err := provider.PostJSON(ctx, p.o.HTTP, p.chatURL, p.headers("application/json"), body)
	if err != nil {
		p.res.end(false, 0)
		return p.clean(schema.AsError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.res.end(false, 0)
		return p.httpError(resp)
	}
	var r chatResponse
	if err := json.NewDecoder(provider.LimitReader(resp.Body, p.o.MaxReplyBytes, "reply")).Decode(&r); err != nil {
		p.res.end(false, 0)
		return p.readError(ctx, err)
	}
	if msg := errorText(r.Error); msg != "" {
		p.res.end(false, 0)
		return p.clean(bodyError("reply", msg))
	}
	p.res.end(true, time.Duration(r.LoadDuration))
	return nil
}
