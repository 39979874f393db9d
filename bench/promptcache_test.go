package bench_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/bench"
)

// chat posts an Ollama /api/chat request with messages (role, content
// pairs) and returns the status and the reply's message content.
func chat(t *testing.T, h *bench.CacheHost, msgs ...string) (int, string) {
	t.Helper()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	var ms []msg
	for i := 0; i+1 < len(msgs); i += 2 {
		ms = append(ms, msg{msgs[i], msgs[i+1]})
	}
	body, _ := json.Marshal(map[string]any{"model": "bench", "stream": false, "messages": ms, "options": map[string]any{"num_predict": 1}})
	resp, err := http.Post(h.URL()+"/api/chat", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Message.Content
}

// The prompt-cache fake counts a turn whose earlier messages (with its
// last reply) it served as a hit, one it saw part of as partial, and
// refuses what Ollama refuses.
func TestCacheHost_CountsHitsOnlyForConversationsItServed(t *testing.T) {
	t.Parallel()
	spec := bench.CacheSpec{Name: "h", Parallel: 2, Base: time.Millisecond, Prefill: time.Millisecond, TokensPerSecond: 1000, Entries: 64}
	a, err := bench.StartCacheHost(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := bench.StartCacheHost(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, reply := chat(t, a, "system", "s", "user", "q1")
	if reply == "" {
		t.Fatal("no reply content")
	}
	chat(t, a, "system", "s", "user", "q1", "assistant", reply, "user", "q2")                                      // hit on a
	chat(t, b, "system", "s", "user", "q1", "assistant", reply, "user", "q2")                                      // cold on b
	chat(t, a, "system", "s", "user", "q1", "assistant", reply, "user", "other", "assistant", reply, "user", "q3") // partial on a
	if got, want := a.Stats(), (bench.CacheStats{Turns: 3, First: 1, Hits: 1, Partial: 1}); got != want {
		t.Errorf("host a: %+v, want %+v", got, want)
	}
	if got, want := b.Stats(), (bench.CacheStats{Turns: 1}); got != want {
		t.Errorf("host b: %+v, want %+v", got, want)
	}
	if status, _ := chat(t, a, "wizard", "x"); status != http.StatusBadRequest {
		t.Errorf("a message of role wizard: status %d, want 400", status)
	}
	if status, _ := chat(t, a); status != http.StatusBadRequest {
		t.Errorf("no messages: status %d, want 400", status)
	}
}
