package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

func TestChatCompletion_Plain(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	e.worker("tier1", "dep-a", 2, echo(), func(c *worker.Config) { c.InputCostPerToken, c.OutputCostPerToken = 1e-6, 3e-6 })
	resp := e.post(chat("tier1", "hello"))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var c schema.Response
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if c.Object != "chat.completion" || c.ID == "" || c.Text() != "echo: hello" || c.Choices[0].Message.Role != "assistant" ||
		c.Choices[0].FinishReason != "stop" || c.Usage.TotalTokens != 3 {
		t.Fatalf("completion %s", body)
	}
	if c.Routing == nil || c.Routing.Tier != "tier1" || c.Routing.Deployment != "dep-a" || c.Routing.CostUSD != 1e-6+2*3e-6 {
		t.Fatalf("routing %+v", c.Routing)
	}
	reps := e.rec.await(t, 1)
	if r := reps[0]; r.Status != 200 || r.Tier != "tier1" || r.Stream || r.Code != "" || r.Routing == nil || r.Duration <= 0 || r.TTFT != 0 {
		t.Fatalf("report %+v", r)
	}
	// A body over the NATS max payload (1 MiB) and one over the gateway's
	// own bound (8 MiB by default) are both 413.
	got := wantError(t, e.post(chat("tier1", strings.Repeat("x", 2<<20))), 413, "invalid_request_error", "payload_too_large", schema.CodePayloadTooLarge)
	if !strings.Contains(got.Error.Message, "max payload") {
		t.Errorf("message %q", got.Error.Message)
	}
	got = wantError(t, e.post(chat("tier1", strings.Repeat("x", 9<<20))), 413, "invalid_request_error", "payload_too_large", schema.CodePayloadTooLarge)
	if !strings.Contains(got.Error.Message, "8388608") {
		t.Errorf("message %q", got.Error.Message)
	}
	if gateway.DefaultListen != "127.0.0.1:8080" {
		t.Errorf("DefaultListen %q is not loopback:8080", gateway.DefaultListen)
	}
}

func TestChatCompletion_StreamSSE(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	e.worker("tier1", "dep-a", 2, &words{pieces: []string{"one", " two", " three"}})
	for _, includeUsage := range []bool{false, true} {
		t.Run("include_usage="+strconv.FormatBool(includeUsage), func(t *testing.T) {
			extra := `,"stream":true`
			if includeUsage {
				extra += `,"stream_options":{"include_usage":true}`
			}
			resp := e.post(chat("tier1", "x", extra))
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			events := sse(t, resp.Body)
			if events[len(events)-1] != "[DONE]" {
				t.Fatalf("stream does not end with [DONE]: %q", events)
			}
			var text strings.Builder
			var finish *string
			var usage *schema.Usage
			var routing *schema.Routing
			id := ""
			for i, ev := range events[:len(events)-1] {
				var c schema.Chunk
				if err := json.Unmarshal([]byte(ev), &c); err != nil {
					t.Fatalf("event %d: %v: %s", i, err, ev)
				}
				if c.Object != "chat.completion.chunk" || (id != "" && c.ID != id) {
					t.Fatalf("event %d: %s", i, ev)
				}
				id = c.ID
				if i == 0 && (len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant") {
					t.Fatalf("first chunk has no assistant role: %s", ev)
				}
				if c.Usage != nil {
					if len(c.Choices) != 0 || usage != nil {
						t.Fatalf("usage outside its own chunk: %s", ev)
					}
					usage = c.Usage
				}
				for _, ch := range c.Choices {
					text.WriteString(ch.Delta.Content)
					if ch.FinishReason != nil {
						finish = ch.FinishReason
						routing = c.Routing
					}
				}
			}
			if text.String() != "one two three" || finish == nil || *finish != "stop" || routing == nil || routing.TTFTMs <= 0 {
				t.Fatalf("text %q, finish %v, routing %+v in %q", text.String(), finish, routing, events)
			}
			if includeUsage != (usage != nil) || (usage != nil && usage.TotalTokens != 6) {
				t.Fatalf("usage %+v with include_usage=%v", usage, includeUsage)
			}
		})
	}
	reps := e.rec.await(t, 2)
	for _, r := range reps {
		if r.Status != 200 || !r.Stream || r.TTFT <= 0 || r.TTFT > r.Duration || r.Routing == nil {
			t.Fatalf("report %+v", r)
		}
	}
}

func TestChatCompletion_StreamErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	e.worker("tier1", "dep-a", 2, &words{pieces: []string{"partial"}, fail: schema.NewError(schema.CodeProviderError, "upstream broke")})

	// Before the first chunk: an HTTP error, not an event stream.
	wantError(t, e.post(chat("nope", "x", `,"stream":true`)), 404, "invalid_request_error", "model_not_found", schema.CodeUnknownTier)

	// After it: an error event ends the stream, without [DONE].
	resp := e.post(chat("tier1", "x", `,"stream":true`))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	events := sse(t, resp.Body)
	if len(events) != 2 {
		t.Fatalf("events %q, want a chunk and an error", events)
	}
	var e2 openAIError
	if err := json.Unmarshal([]byte(events[1]), &e2); err != nil || e2.Error.Code != schema.CodeProviderError || e2.Error.Type != "api_error" {
		t.Fatalf("last event %s (%v)", events[1], err)
	}
	reps := e.rec.await(t, 2)
	codes := map[string]bool{}
	for _, r := range reps {
		codes[strconv.Itoa(r.Status)+" "+r.Code] = true
	}
	if !codes["404 unknown_tier"] || !codes["200 provider_error"] {
		t.Fatalf("reports %+v", reps)
	}
}

func TestChatCompletion_ClientGoneCancelsTheStream(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	p := &words{pieces: []string{"first"}, block: make(chan error, 1)}
	e.worker("tier1", "dep-a", 1, p)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v1/chat/completions", strings.NewReader(chat("tier1", "x", `,"stream":true`)))
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "data: " {
		t.Fatalf("first bytes %q, %v", buf, err)
	}
	cancel() // the client goes away mid-stream
	resp.Body.Close()
	select {
	case err := <-p.block:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("provider ctx ended with %v, want cancelled", err)
		}
	case <-time.After(wait):
		t.Fatal("the provider call was not cancelled")
	}
	if r := e.rec.await(t, 1)[0]; r.Status != 499 || r.Code != schema.CodeCancelled {
		t.Fatalf("report %+v, want 499 cancelled", r)
	}
}

func TestErrors_StatusAndShape(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{MaxBodyBytes: 4096, Timeout: 500 * time.Millisecond},
		dispatcher.Config{Tiers: []string{"ghost"}, StartupGrace: time.Millisecond})
	e.worker("broken", "dep-b", 2, failing(schema.NewError(schema.CodeProviderError, "HTTP 500")))
	e.worker("badkey", "dep-k", 2, failing(schema.NewError(schema.CodeAuthentication, "HTTP 401")))
	e.worker("limited", "dep-l", 2, failing(schema.NewError(schema.CodeRateLimited, "slow down").WithRetryAfter(2500*time.Millisecond)))
	e.worker("small", "dep-c", 2, failing(schema.NewError(schema.CodeContextWindowExceeded, "prompt too long")))
	e.worker("prude", "dep-p", 2, failing(schema.NewError(schema.CodeContentPolicy, "refused")))
	e.worker("unreachable", "dep-u", 2, failing(schema.NewError(schema.CodeConnection, "connection refused")))
	e.worker("misnamed", "dep-n", 2, failing(schema.NewError(schema.CodeNotFound, "no such model")))
	e.worker("stopping", "dep-x", 2, failing(schema.NewError(schema.CodeCancelled, "worker stopped")))
	g := newGate(t)
	e.worker("slow", "dep-s", 1, g)

	tests := []struct {
		name, method, path, body string
		status                   int
		typ, code, llmqCode      string
	}{
		{"malformed JSON", "POST", "/v1/chat/completions", `{"model":`, 400, "invalid_request_error", "bad_request", "bad_request"},
		{"no messages", "POST", "/v1/chat/completions", `{"model":"tier1","messages":[]}`, 400, "invalid_request_error", "bad_request", "bad_request"},
		{"no model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 400, "invalid_request_error", "bad_request", "bad_request"},
		{"temperature out of range", "POST", "/v1/chat/completions", chat("tier1", "x", `,"temperature":3`), 400, "invalid_request_error", "bad_request", "bad_request"},
		{"body too large", "POST", "/v1/chat/completions", chat("tier1", strings.Repeat("x", 5000)), 413, "invalid_request_error", "payload_too_large", "payload_too_large"},
		{"unknown model", "POST", "/v1/chat/completions", chat("nope", "x"), 404, "invalid_request_error", "model_not_found", "unknown_tier"},
		{"invalid model name", "POST", "/v1/chat/completions", chat("a b", "x"), 404, "invalid_request_error", "model_not_found", "unknown_tier"},
		{"no worker", "POST", "/v1/chat/completions", chat("ghost", "x"), 503, "api_error", "no_deployments", "no_deployments"},
		{"context window", "POST", "/v1/chat/completions", chat("small", "x"), 400, "invalid_request_error", "context_length_exceeded", "context_window_exceeded"},
		{"content policy", "POST", "/v1/chat/completions", chat("prude", "x"), 400, "invalid_request_error", "content_policy", "content_policy"},
		{"provider error", "POST", "/v1/chat/completions", chat("broken", "x"), 502, "api_error", "provider_error", "provider_error"},
		{"provider unreachable", "POST", "/v1/chat/completions", chat("unreachable", "x"), 502, "api_error", "connection_error", "connection_error"},
		{"deployment's model unknown", "POST", "/v1/chat/completions", chat("misnamed", "x"), 502, "api_error", "not_found", "not_found"},
		{"worker stopped mid-job", "POST", "/v1/chat/completions", chat("stopping", "x"), 503, "api_error", "cancelled", "cancelled"},
		{"deployment's key refused", "POST", "/v1/chat/completions", chat("badkey", "x"), 502, "api_error", "authentication", "authentication"},
		{"rate limited", "POST", "/v1/chat/completions", chat("limited", "x"), 429, "rate_limit_error", "rate_limit_exceeded", "rate_limited"},
		{"deadline", "POST", "/v1/chat/completions", chat("slow", "x"), 504, "timeout_error", "timeout", "timeout"},
		{"wrong method", "GET", "/v1/chat/completions", "", 405, "invalid_request_error", "method_not_allowed", ""},
		{"wrong method for embeddings", "GET", "/v1/embeddings", "", 405, "invalid_request_error", "method_not_allowed", ""},
		{"unknown URL", "GET", "/v1/images/generations", "", 404, "invalid_request_error", "unknown_url", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(tt.method, tt.path, tt.body)
			got := wantError(t, resp, tt.status, tt.typ, tt.code, tt.llmqCode)
			switch tt.status {
			case 429:
				if resp.Header.Get("Retry-After") != "3" || resp.Header.Get("Retry-After-Ms") != "2500" {
					t.Errorf("Retry-After %q, Retry-After-Ms %q; want 3 and 2500", resp.Header.Get("Retry-After"), resp.Header.Get("Retry-After-Ms"))
				}
			case 405:
				if resp.Header.Get("Allow") != "POST" {
					t.Errorf("Allow %q", resp.Header.Get("Allow"))
				}
			case 404:
				if tt.llmqCode == schema.CodeUnknownTier && (got.Error.Param == nil || *got.Error.Param != "model") {
					t.Errorf("param %v, want model", got.Error.Param)
				}
			default:
				if resp.Header.Get("Retry-After") != "" {
					t.Errorf("Retry-After on a %d", tt.status)
				}
			}
		})
	}
	g.open()
}

func TestErrors_OverloadedAndCoolingAre429WithRetryAfter(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{MaxQueue: 1, Tiers: []string{"hot"}})
	g := newGate(t)
	e.worker("tier1", "dep-a", 1, g)
	first := make(chan *http.Response, 2)
	go func() { first <- e.post(chat("tier1", "running")) }()
	g.awaitStarted(t)
	go func() { first <- e.post(chat("tier1", "queued")) }()
	deadline := time.Now().Add(wait)
	for e.d.Stats().Tiers[indexOf(e.d.Stats(), "tier1")].Queued != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second job never queued")
		}
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
	resp := e.post(chat("tier1", "refused"))
	wantError(t, resp, 429, "rate_limit_error", "overloaded", schema.CodeOverloaded)
	if resp.Header.Get("Retry-After") != "1" || resp.Header.Get("Retry-After-Ms") != "1000" {
		t.Errorf("Retry-After %q, Retry-After-Ms %q", resp.Header.Get("Retry-After"), resp.Header.Get("Retry-After-Ms"))
	}
	g.open()
	for range 2 {
		if r := <-first; r.StatusCode != 200 {
			t.Fatalf("held job answered %d", r.StatusCode)
		}
	}

	// A deployment resting after a failure: the tier cools, and the gateway
	// answers 429 until it is back.
	e.worker("hot", "dep-h", 1, failing(schema.NewError(schema.CodeProviderError, "boom")), func(c *worker.Config) {
		c.Cooldown = worker.Cooldown{AllowedFails: 1, Time: time.Minute}
	})
	wantError(t, e.post(chat("hot", "x")), 502, "api_error", "provider_error", schema.CodeProviderError)
	// Wait for the dispatcher to see the rest in a heartbeat: a job that
	// arrived before would wait in its queue for the rest to end.
	deadline = time.Now().Add(wait)
	for {
		st := e.d.Stats()
		if i := indexOf(st, "hot"); i >= 0 && len(st.Tiers[i].Workers) == 1 && st.Tiers[i].Workers[0].CoolingUntilMs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher never saw the deployment cool")
		}
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
	resp = e.post(chat("hot", "x"))
	wantError(t, resp, 429, "rate_limit_error", "cooling_down", schema.CodeCoolingDown)
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 50 || s > 60 {
		t.Fatalf("Retry-After %q, want about 60", resp.Header.Get("Retry-After"))
	}
}

func indexOf(s dispatcher.Stats, tier string) int {
	for i, t := range s.Tiers {
		if t.Name == tier {
			return i
		}
	}
	return -1
}

func TestAuth_BearerKeys(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{Keys: []string{"sk-one", "sk-two"}}, dispatcher.Config{})
	e.worker("tier1", "dep-a", 2, echo())
	wantError(t, e.post(chat("tier1", "x")), 401, "invalid_request_error", "invalid_api_key", "")
	resp := e.post(chat("tier1", "x"), "Authorization", "Bearer sk-wrong")
	got := wantError(t, resp, 401, "invalid_request_error", "invalid_api_key", "")
	if strings.Contains(got.Error.Message, "sk-") {
		t.Fatalf("the error repeats a key: %q", got.Error.Message)
	}
	wantError(t, e.post(chat("tier1", "x"), "Authorization", "sk-one"), 401, "invalid_request_error", "invalid_api_key", "")
	wantError(t, e.do("GET", "/v1/models", ""), 401, "invalid_request_error", "invalid_api_key", "")
	for _, key := range []string{"sk-one", "sk-two"} {
		if resp := e.post(chat("tier1", "x"), "Authorization", "Bearer "+key); resp.StatusCode != 200 {
			t.Fatalf("key %s: status %d", key, resp.StatusCode)
		}
	}
	if resp := e.do("GET", "/v1/models", "", "Authorization", "Bearer sk-two"); resp.StatusCode != 200 {
		t.Fatalf("models with a key: %d", resp.StatusCode)
	}
	if resp := e.do("GET", "/health", ""); resp.StatusCode != 200 {
		t.Fatalf("health without a key: %d", resp.StatusCode)
	}
}

func TestModels_ListsConfiguredAndLiveTiers(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{Tiers: []string{"configured"}}, dispatcher.Config{})
	e.worker("live.tier", "dep-a", 2, echo())
	var ids []string
	deadline := time.Now().Add(wait)
	for {
		resp := e.do("GET", "/v1/models", "")
		var raw struct {
			Object string           `json:"object"`
			Data   []map[string]any `json:"data"`
		}
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&raw) != nil {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if raw.Object != "list" {
			t.Fatalf("object %q, want list", raw.Object)
		}
		ids = ids[:0]
		for _, m := range raw.Data {
			if m["object"] != "model" || m["owned_by"] != "llmq" {
				t.Fatalf("model %v", m)
			}
			if _, ok := m["created"].(float64); !ok {
				t.Fatalf("model %v has no created", m)
			}
			ids = append(ids, m["id"].(string))
		}
		if strings.Join(ids, ",") == "configured,live.tier" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("models %v, want configured and live.tier", ids)
		}
		time.Sleep(10 * time.Millisecond) // the gateway learns tiers from heartbeats
	}
	if resp := e.do("GET", "/v1/models/live.tier", ""); resp.StatusCode != 200 {
		t.Fatalf("retrieve live.tier: %d", resp.StatusCode)
	}
	wantError(t, e.do("GET", "/v1/models/nope", ""), 404, "invalid_request_error", "model_not_found", "")
}

func TestService_DiscoveryAndStats(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{Keys: []string{"k"}}, dispatcher.Config{})
	e.worker("tier1", "dep-a", 2, echo())
	e.post(chat("tier1", "x"), "Authorization", "Bearer k")
	e.post(chat("tier1", "x"))
	e.rec.await(t, 1)
	ping, _ := micro.ControlSubject(micro.PingVerb, gateway.ServiceName, "")
	m, err := e.nc.Request(ping, nil, wait)
	if err != nil {
		t.Fatalf("$SRV.PING: %v", err)
	}
	var p micro.Ping
	if err := json.Unmarshal(m.Data, &p); err != nil {
		t.Fatal(err)
	}
	if p.Name != gateway.ServiceName || p.Metadata["url"] != e.base+"/v1" || p.Metadata["auth"] != "true" || p.Metadata["prefix"] != e.subjects.Prefix {
		t.Fatalf("ping %+v", p)
	}
	if want := e.subjects.Prefix + ".ctl.gateway.g" + e.base[strings.LastIndex(e.base, ":")+1:] + ".stats"; e.g.ServiceSubject() != want {
		t.Fatalf("ServiceSubject %q, want %q", e.g.ServiceSubject(), want)
	}
	m, err = e.nc.Request(e.g.ServiceSubject(), nil, wait)
	if err != nil {
		t.Fatal(err)
	}
	var s gateway.ServiceStats
	if err := json.Unmarshal(m.Data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Requests != 2 || s.ByStatus["200"] != 1 || s.ByStatus["401"] != 1 || s.InFlight != 0 || s.URL != e.base+"/v1" {
		t.Fatalf("stats %+v", s)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	if _, err := gateway.New(gateway.Config{}); err == nil {
		t.Fatal("New without Conn succeeded")
	}
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	if _, err := gateway.New(gateway.Config{Conn: e.nc, Keys: []string{""}}); err == nil {
		t.Fatal("an empty key was accepted")
	}
	if _, err := gateway.New(gateway.Config{Conn: e.nc, Tiers: []string{"a b"}}); err == nil {
		t.Fatal("an invalid tier was accepted")
	}
	if err := e.g.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	g, err := gateway.New(gateway.Config{Conn: e.nc, Subjects: e.subjects, Listen: e.g.Addr(), Logger: quiet(), NoService: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err == nil {
		t.Fatal("Start on a taken port succeeded")
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatalf("Stop of an unstarted gateway: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for range 2 {
		if err := e.g.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	ping, _ := micro.ControlSubject(micro.PingVerb, gateway.ServiceName, "")
	if _, err := e.nc.Request(ping, nil, wait); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("ping after Stop: %v, want no responders", err)
	}
}

func TestStop_CutsOpenStreamsAfterItsDeadline(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{}, dispatcher.Config{})
	p := &words{pieces: []string{"first"}, block: make(chan error, 1)}
	e.worker("tier1", "dep-a", 1, p)
	resp := e.post(chat("tier1", "x", `,"stream":true`))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.g.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want the deadline: a stream was open", err)
	}
	select {
	case err := <-p.block:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("provider ctx ended with %v", err)
		}
	case <-time.After(wait):
		t.Fatal("the cut stream's job was not cancelled")
	}
	_, _ = io.ReadAll(resp.Body) // the stream is over, cleanly or cut
	if r := e.rec.await(t, 1)[0]; r.Status != 499 {
		t.Fatalf("report %+v, want 499", r)
	}
}
