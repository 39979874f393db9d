package ollamatest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// hostChat sends a non-streamed chat for model and returns the answer.
func hostChat(t *testing.T, url, model, keepAlive string) ollamatest.ChatResponse {
	t.Helper()
	ka := ""
	if keepAlive != "" {
		ka = `,"keep_alive":` + keepAlive
	}
	status, _, body := do(t, "POST", url+"/api/chat",
		fmt.Sprintf(`{"model":%q,"stream":false,"messages":[{"role":"user","content":"hi"}]%s}`, model, ka))
	if status != http.StatusOK {
		t.Fatalf("chat %s: %d %s", model, status, body)
	}
	var r ollamatest.ChatResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// ps returns the names GET /api/ps lists, checking the shape.
func ps(t *testing.T, url string) []string {
	t.Helper()
	status, ctype, body := do(t, "GET", url+"/api/ps", "")
	if status != http.StatusOK || ctype != "application/json; charset=utf-8" {
		t.Fatalf("ps: %d %s %s", status, ctype, body)
	}
	var r struct {
		Models []map[string]any `json:"models"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Models == nil {
		t.Fatalf("ps body %s: %v", body, err)
	}
	var names []string
	for _, m := range r.Models {
		for _, k := range []string{"name", "model", "size", "size_vram", "expires_at", "digest", "details"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("ps model %v lacks %q", m, k)
			}
		}
		names = append(names, m["name"].(string))
	}
	return names
}

func hostConfig() ollamatest.Config {
	return ollamatest.Config{Models: []string{"coder:14b", "chat:8b"}, MaxLoaded: 1, LoadTime: 30 * time.Millisecond, Parallel: 2}
}

func TestHost_ColdCallLoadsTheModelAndPsListsIt(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, hostConfig())
	if got := ps(t, fake.URL()); len(got) != 0 {
		t.Fatalf("ps before any call = %v, want none loaded", got)
	}
	cold := hostChat(t, fake.URL(), "coder:14b", "")
	if cold.LoadDuration < int64(30*time.Millisecond) {
		t.Errorf("cold call load_duration = %v, want at least the load time", time.Duration(cold.LoadDuration))
	}
	if got := ps(t, fake.URL()); !slices.Equal(got, []string{"coder:14b"}) {
		t.Errorf("ps = %v, want [coder:14b]", got)
	}
	warm := hostChat(t, fake.URL(), "coder:14b", "")
	if warm.LoadDuration >= int64(30*time.Millisecond) {
		t.Errorf("warm call load_duration = %v, want no load", time.Duration(warm.LoadDuration))
	}
	if st := fake.Stats(); st.Loads != 1 || st.Unloads != 0 {
		t.Errorf("loads, unloads = %d, %d; want 1, 0", st.Loads, st.Unloads)
	}
}

func TestHost_FullHostEvictsTheLeastRecentlyUsedModel(t *testing.T) {
	t.Parallel()
	cfg := hostConfig()
	cfg.Models = append(cfg.Models, "third:1b")
	cfg.MaxLoaded = 2
	fake := ollamatest.NewServer(t, cfg)
	hostChat(t, fake.URL(), "coder:14b", "")
	hostChat(t, fake.URL(), "chat:8b", "")
	hostChat(t, fake.URL(), "coder:14b", "") // chat is now the least recently used
	hostChat(t, fake.URL(), "third:1b", "")
	if got := ps(t, fake.URL()); !slices.Equal(got, []string{"coder:14b", "third:1b"}) {
		t.Errorf("ps = %v, want chat evicted", got)
	}
	if st := fake.Stats(); st.Loads != 3 || st.Unloads != 1 {
		t.Errorf("loads, unloads = %d, %d; want 3, 1", st.Loads, st.Unloads)
	}
}

func TestHost_KeepAliveZeroUnloadsAfterTheCall(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, hostConfig())
	hostChat(t, fake.URL(), "coder:14b", "0")
	if got := ps(t, fake.URL()); len(got) != 0 {
		t.Errorf("ps after keep_alive 0 = %v, want none", got)
	}
	hostChat(t, fake.URL(), "coder:14b", "-1") // negative: forever
	if got := ps(t, fake.URL()); !slices.Equal(got, []string{"coder:14b"}) {
		t.Errorf("ps = %v", got)
	}
	if st := fake.Stats(); st.Loads != 2 || st.Unloads != 1 {
		t.Errorf("loads, unloads = %d, %d; want 2, 1", st.Loads, st.Unloads)
	}
}

func TestHost_KeepAliveExpires(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, hostConfig())
	hostChat(t, fake.URL(), "coder:14b", `"1ms"`)
	deadline := time.Now().Add(10 * time.Second)
	for len(fake.Loaded()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("model still loaded after its keep_alive: %v", fake.Loaded())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHost_EmptyChatLoadsOrUnloads(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, hostConfig())
	status, _, body := do(t, "POST", fake.URL()+"/api/chat", `{"model":"chat:8b","messages":[],"keep_alive":"10m"}`)
	if status != 200 || !json.Valid([]byte(body)) {
		t.Fatalf("%d %s", status, body)
	}
	var r ollamatest.ChatResponse
	_ = json.Unmarshal([]byte(body), &r)
	if r.DoneReason != "load" || !r.Done {
		t.Errorf("load answer %+v", r)
	}
	if got := ps(t, fake.URL()); !slices.Equal(got, []string{"chat:8b"}) {
		t.Errorf("ps = %v", got)
	}
	_, _, body = do(t, "POST", fake.URL()+"/api/chat", `{"model":"chat:8b","messages":[],"keep_alive":0}`)
	_ = json.Unmarshal([]byte(body), &r)
	if r.DoneReason != "unload" {
		t.Errorf("unload answer %s", body)
	}
	if got := ps(t, fake.URL()); len(got) != 0 {
		t.Errorf("ps = %v after unload", got)
	}
}

func TestHost_LoadWaitsForTheLoadedModelsCallsAndQueuesInOrder(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	cfg := hostConfig()
	cfg.Hold = hold
	fake := ollamatest.NewServer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan string, 3)
	go func() { hostChat(t, fake.URL(), "coder:14b", ""); done <- "coder" }()
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 1 }); err != nil {
		t.Fatal(err)
	}
	go func() { hostChat(t, fake.URL(), "chat:8b", ""); done <- "chat" }()
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.Queued == 1 }); err != nil {
		t.Fatal(err)
	}
	// A call for the loaded model waits behind the one that needs a load,
	// as in Ollama's scheduler.
	go func() { hostChat(t, fake.URL(), "coder:14b", ""); done <- "coder2" }()
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.Queued == 2 }); err != nil {
		t.Fatal(err)
	}
	if got := fake.Loaded(); !slices.Equal(got, []string{"coder:14b"}) {
		t.Errorf("loaded while coder generates = %v", got)
	}
	close(hold)
	var order []string
	for range 3 {
		order = append(order, <-done)
	}
	if order[0] != "coder" || order[2] != "coder2" {
		t.Errorf("finished in order %v, want coder, chat, coder2", order)
	}
	if st := fake.Stats(); st.Loads != 3 || st.Unloads != 2 || st.MaxInFlight != 1 {
		t.Errorf("stats %+v, want 3 loads, 2 unloads, one call at a time", st)
	}
}

func TestHost_ParallelSlotsArePerModel(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	cfg := hostConfig()
	cfg.MaxLoaded, cfg.Parallel, cfg.Hold = 2, 1, hold
	fake := ollamatest.NewServer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{}, 3)
	for _, m := range []string{"coder:14b", "chat:8b"} {
		go func() { hostChat(t, fake.URL(), m, ""); done <- struct{}{} }()
	}
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 2 }); err != nil {
		t.Fatal(err)
	}
	go func() { hostChat(t, fake.URL(), "coder:14b", ""); done <- struct{}{} }()
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.Queued == 1 }); err != nil {
		t.Fatal(err)
	}
	close(hold)
	for range 3 {
		<-done
	}
	if st := fake.Stats(); st.MaxInFlight != 2 || st.Loads != 2 {
		t.Errorf("stats %+v, want two models at one call each", st)
	}
}

func TestHost_PsMethodsAndDefaultListing(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	if status, _, _ := do(t, "POST", fake.URL()+"/api/ps", "{}"); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/ps = %d, want 405", status)
	}
	// Without the host model every model counts as loaded.
	if got := ps(t, fake.URL()); !slices.Equal(got, []string{ollamatest.DefaultModel}) {
		t.Errorf("ps = %v", got)
	}
}
