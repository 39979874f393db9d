package worker

import (
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
)

func TestRateWindow_RPM(t *testing.T) {
	t0 := time.Now()
	r := newRateWindow(time.Minute, 3, 0)
	for i := range 3 {
		ticket, ok, _, full := r.at(t0.Add(time.Duration(i) * time.Second)).admit(1)
		if !ok || ticket != uint64(i) || full != (i == 2) {
			t.Fatalf("call %d: ticket %d ok %v full %v", i, ticket, ok, full)
		}
	}
	if _, ok, wait, _ := r.at(t0.Add(3 * time.Second)).admit(1); ok || wait != 57*time.Second {
		t.Fatalf("fourth call in the window: ok %v, wait %v, want refused for 57s", ok, wait)
	}
	// The first call leaves the window a minute after it was admitted.
	if _, ok, _, _ := r.at(t0.Add(time.Minute - time.Nanosecond)).admit(1); ok {
		t.Fatal("admitted before the first call left the window")
	}
	if ticket, ok, _, _ := r.at(t0.Add(time.Minute)).admit(1); !ok || ticket != 3 {
		t.Fatalf("after the first call left: ticket %d ok %v", ticket, ok)
	}
	calls, tokens, _, frees, wake := r.usage(t0.Add(time.Minute))
	if calls != 3 || tokens != 3 || !frees.Equal(t0.Add(61*time.Second)) || !wake.Equal(frees) {
		t.Fatalf("usage: %d calls, %d tokens, frees %v, wake %v", calls, tokens, frees.Sub(t0), wake.Sub(t0))
	}
	if calls, _, _, frees, wake := r.usage(t0.Add(3 * time.Minute)); calls != 0 || !frees.IsZero() || !wake.IsZero() {
		t.Fatalf("empty window: %d calls, frees %v, wake %v", calls, frees, wake)
	}
}

func TestRateWindow_TPM(t *testing.T) {
	t0 := time.Now()
	r := newRateWindow(time.Minute, 0, 100)
	a, ok, _, full := r.at(t0).admit(40)
	if !ok || full {
		t.Fatalf("first: ok %v full %v", ok, full)
	}
	if _, ok, _, full = r.at(t0.Add(time.Second)).admit(40); !ok || !full {
		t.Fatalf("second: ok %v full %v (80 of 100 used, mean 40: full)", ok, full)
	}
	// 80 + 40 > 100: 20 must leave, the first call (40) does at t0+60s.
	if _, ok, wait, _ := r.at(t0.Add(2 * time.Second)).admit(40); ok || wait != 58*time.Second {
		t.Fatalf("third: ok %v wait %v, want refused for 58s", ok, wait)
	}
	// The first call's usage turns out to be 10: 50 used, the third fits.
	r.settle(a, 10)
	if _, ok, _, _ := r.at(t0.Add(2 * time.Second)).admit(40); !ok {
		t.Fatal("third refused after the first call settled at 10 tokens")
	}
	if _, ok, wait, _ := r.at(t0.Add(2 * time.Second)).admit(101); ok || wait >= 0 {
		t.Fatalf("a call over the whole tpm: ok %v wait %v, want a negative wait", ok, wait)
	}
	// A call settled after it left the window changes nothing.
	r.settle(a, 1000)
	if _, tokens, _, _, _ := r.usage(t0.Add(60500 * time.Millisecond)); tokens != 80 {
		t.Fatalf("tokens %d after the first call left, want 80", tokens)
	}
}

func TestEstimateTokens(t *testing.T) {
	ten := 10
	req := &schema.Request{Messages: []schema.Message{{Role: "system", Content: "héllo"}, {Role: "user", Content: "abcd"}}, MaxTokens: &ten}
	if total, prompt := estimateTokens(req); prompt != 3 || total != 13 {
		t.Fatalf("estimate %d (prompt %d), want 13 (9 characters → 3, plus max_tokens 10)", total, prompt)
	}
	if total, _ := estimateTokens(&schema.Request{Messages: []schema.Message{{Role: "user"}}}); total != 1 {
		t.Fatalf("empty job estimated %d, want 1", total)
	}
}

// at sets the window's clock to t.
func (r *rateWindow) at(t time.Time) *rateWindow {
	r.clock = func() time.Time { return t }
	return r
}

func TestEstimateTokens_EmbeddingJobCountsInputTextsAndNoOutput(t *testing.T) {
	t.Parallel()
	req := &schema.Request{Input: schema.InputList{"abcdefgh", "ijkl"}}
	if total, prompt := estimateTokens(req); prompt != 3 || total != 3 {
		t.Fatalf("estimate %d (prompt %d), want 3 (12 characters → 3, no output)", total, prompt)
	}
	if n := PromptTokens(req); n != 3 {
		t.Fatalf("pre-call estimate %d, want 3 (no chat overhead)", n)
	}
}

func TestEstimateTokens_CountsTextPartsAndToolCalls(t *testing.T) {
	t.Parallel()
	req := &schema.Request{Messages: []schema.Message{
		{Role: "user", Parts: []schema.ContentPart{{Type: "text", Text: "abcd"}, {Type: "image_url", ImageURL: &schema.ImageURL{URL: "https://x/y.png"}}}},
		{Role: "assistant", ToolCalls: []schema.ToolCall{{ID: "c", Function: schema.FunctionCall{Name: "fn", Arguments: "{}"}}}},
	}}
	if _, prompt := estimateTokens(req); prompt != 2 {
		t.Fatalf("prompt %d, want 2 (4 text + 4 call characters)", prompt)
	}
}
