package provider_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

func TestCallContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		parent     time.Duration // 0 = no deadline
		d          time.Duration
		wantParent bool // the parent's deadline is kept
	}{
		{"no parent deadline applies d", 0, time.Minute, false},
		{"earlier parent deadline is kept", time.Second, time.Hour, true},
		{"later parent deadline is shortened to d", time.Hour, 2 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parent := context.Background()
			var parentDL time.Time
			if tt.parent > 0 {
				var cancel context.CancelFunc
				parent, cancel = context.WithTimeout(parent, tt.parent)
				defer cancel()
				parentDL, _ = parent.Deadline()
			}
			before := time.Now()
			ctx, cancel := provider.CallContext(parent, tt.d)
			after := time.Now()
			dl, ok := ctx.Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			if tt.wantParent {
				if !dl.Equal(parentDL) {
					t.Fatalf("deadline = %v, want the parent's %v", dl, parentDL)
				}
			} else if dl.Before(before.Add(tt.d)) || dl.After(after.Add(tt.d)) {
				t.Fatalf("deadline in %v, want %v", time.Until(dl), tt.d)
			}
			cancel()
			if ctx.Err() == nil {
				t.Fatal("cancel did not end the call context")
			}
			if parent.Err() != nil {
				t.Fatal("cancel ended the parent")
			}
		})
	}
	t.Run("parent cancellation ends the call", func(t *testing.T) {
		t.Parallel()
		parent, cancelParent := context.WithCancel(context.Background())
		ctx, cancel := provider.CallContext(parent, time.Hour)
		defer cancel()
		cancelParent()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("call context outlived its parent")
		}
	})
}

func TestOptionsWithDefaults(t *testing.T) {
	t.Parallel()
	custom := &http.Client{}
	tests := []struct {
		name                 string
		in                   provider.Options
		timeout, stream      time.Duration
		keepsHTTP, keepsKeys bool
	}{
		{"zero value", provider.Options{}, provider.DefaultTimeout, provider.DefaultTimeout, false, false},
		{"negative timeouts", provider.Options{Timeout: -1, StreamTimeout: -1}, provider.DefaultTimeout, provider.DefaultTimeout, false, false},
		{"stream time-out follows timeout", provider.Options{Timeout: 5 * time.Second}, 5 * time.Second, 5 * time.Second, false, false},
		{"explicit stream time-out kept", provider.Options{Timeout: 5 * time.Second, StreamTimeout: time.Minute}, 5 * time.Second, time.Minute, false, false},
		{"stream time-out alone", provider.Options{StreamTimeout: time.Minute}, provider.DefaultTimeout, time.Minute, false, false},
		{"client and fields kept", provider.Options{HTTP: custom, Model: "m", APIBase: "http://b", APIKey: "k"}, provider.DefaultTimeout, provider.DefaultTimeout, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := tt.in.WithDefaults()
			if o.Timeout != tt.timeout || o.StreamTimeout != tt.stream {
				t.Fatalf("timeouts = %v/%v, want %v/%v", o.Timeout, o.StreamTimeout, tt.timeout, tt.stream)
			}
			if o.HTTP == nil {
				t.Fatal("HTTP left nil")
			}
			if tt.keepsHTTP && o.HTTP != custom {
				t.Fatal("custom client replaced")
			}
			if _, ok := o.HTTP.(*http.Client); !ok {
				t.Fatalf("HTTP = %T", o.HTTP)
			}
			if tt.keepsKeys && (o.Model != "m" || o.APIBase != "http://b" || o.APIKey != "k") {
				t.Fatalf("fields changed: %+v", o)
			}
			if c, ok := o.HTTP.(*http.Client); ok && c != custom {
				c.CloseIdleConnections()
			}
		})
	}
	if (provider.Options{}).WithDefaults().HTTP == (provider.Options{}).WithDefaults().HTTP {
		t.Error("WithDefaults shares one default client")
	}
}

func TestPostJSONSendsJSONWithHeaders(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, query string
		header              http.Header
		body                map[string]any
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("body: %v", err)
		}
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	h := http.Header{
		"X-Api-Key":         {"k-1"},
		"anthropic-version": {"2023-06-01"}, // non-canonical keys are sent as given
		"Content-Type":      {"text/plain"}, // overridden
	}
	resp, err := provider.PostJSON(context.Background(), newClient(t), srv.URL+"/v1/chat?alt=sse", h,
		map[string]any{"model": "m", "n": 2, "stop": []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"ok":true}` {
		t.Fatalf("response %d %q", resp.StatusCode, b)
	}
	s := <-got
	if s.method != http.MethodPost || s.path != "/v1/chat" || s.query != "alt=sse" {
		t.Errorf("request %s %s?%s", s.method, s.path, s.query)
	}
	if ct := s.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if len(s.header.Values("Content-Type")) != 1 {
		t.Errorf("Content-Type values = %q", s.header.Values("Content-Type"))
	}
	if s.header.Get("X-Api-Key") != "k-1" || s.header.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("headers = %v", s.header)
	}
	if s.body["model"] != "m" || s.body["n"] != float64(2) {
		t.Errorf("body = %v", s.body)
	}
	if h.Get("Content-Type") != "text/plain" {
		t.Error("PostJSON changed the caller's headers")
	}
}

func TestPostJSONFailsTypedBeforeSending(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		body any
		msg  string
	}{
		{"unencodable body", "http://127.0.0.1:1/", map[string]any{"c": make(chan int)}, "encode request"},
		{"bad URL", "http://[::1", map[string]int{}, "build request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			doer := doerFunc(func(*http.Request) (*http.Response, error) { calls.Add(1); return nil, io.EOF })
			resp, err := provider.PostJSON(context.Background(), doer, tt.url, nil, tt.body)
			if resp != nil {
				t.Fatal("got a response")
			}
			if e := schema.AsError(err); e.Code != schema.CodeInternal || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("err = %v, want internal %q", err, tt.msg)
			}
			if calls.Load() != 0 {
				t.Fatal("request was sent")
			}
		})
	}
}

type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestReadErrorBodyIsBoundedAndCloses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		size int
		want int
	}{
		{"small body read whole", 100, 100},
		{"body at the bound", provider.MaxErrorBody, provider.MaxErrorBody},
		{"big body cut at the bound", provider.MaxErrorBody + 5000, provider.MaxErrorBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := &trackingBody{Reader: strings.NewReader(strings.Repeat("e", tt.size))}
			got := provider.ReadErrorBody(&http.Response{Body: body})
			if len(got) != tt.want {
				t.Fatalf("read %d bytes, want %d", len(got), tt.want)
			}
			if !body.closed {
				t.Fatal("body not closed")
			}
		})
	}
}

type trackingBody struct {
	io.Reader
	closed bool
}

func (b *trackingBody) Close() error { b.closed = true; return nil }

func TestNewHTTPClientReusesConnections(t *testing.T) {
	t.Parallel()
	const width = 8
	var newConns atomic.Int32
	// gate holds every call until the test opens it, so that a round of
	// concurrent calls really is width calls in flight at once.
	var gate atomic.Pointer[chan struct{}]
	open := make(chan struct{})
	close(open)
	gate.Store(&open)
	arrived := make(chan struct{}, width)
	stop := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		g := *gate.Load()
		select {
		case arrived <- struct{}{}:
			select {
			case <-g:
			case <-stop:
			}
		case <-stop:
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // before srv.Close, which waits for handlers
	c := newClient(t)

	// Sequential calls share one connection.
	for i := 0; i < 5; i++ {
		resp, err := provider.PostJSON(context.Background(), c, srv.URL, nil, map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		<-arrived
	}
	if n := newConns.Load(); n != 1 {
		t.Fatalf("5 sequential calls opened %d connections, want 1", n)
	}

	// Rounds of concurrent calls reuse the idle connections of the first
	// round: more than the default 2 idle per host are kept.
	round := func() {
		g := make(chan struct{})
		gate.Store(&g)
		var wg sync.WaitGroup
		for i := 0; i < width; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := provider.PostJSON(context.Background(), c, srv.URL, nil, map[string]int{})
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		for i := 0; i < width; i++ {
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				t.Fatalf("only %d of %d calls in flight", i, width)
			}
		}
		close(g)
		wg.Wait()
	}
	round()
	afterFirst := newConns.Load()
	if afterFirst != width {
		t.Fatalf("%d calls in flight used %d connections, want %d", width, afterFirst, width)
	}
	for i := 0; i < 3; i++ {
		round()
	}
	// A caller's Close returns before the transport's read loop puts the
	// connection back in the idle pool, so on a loaded machine the next
	// round may now and then dial while one is on its way back. The
	// default transport keeps 2 idle per host: it would open width-2 new
	// connections every round, 3×(width-2) in all; ours opens about none.
	if n := newConns.Load() - afterFirst; n >= width-2 {
		t.Fatalf("later rounds opened %d new connections (after the first round: %d), want fewer than %d", n, afterFirst, width-2)
	}
}
