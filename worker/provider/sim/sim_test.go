package sim_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/sim"
)

// wait is the generous bound on any event a test waits for.
const wait = 20 * time.Second

func newSim(t *testing.T, cfg sim.Config) *sim.Provider {
	t.Helper()
	p, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ask(text string) *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}}
}

func limit(n int) *int { return &n }

func TestSim_Complete_CyclesWordsOfLastUserMessage(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{Name: "demo", Tokens: 5})
	req := &schema.Request{Messages: []schema.Message{
		{Role: schema.RoleSystem, Content: "be terse"},
		{Role: schema.RoleUser, Content: "first question"},
		{Role: schema.RoleAssistant, Content: "answer"},
		{Role: schema.RoleUser, Content: "red  green"},
	}}
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Text(), "red green red green red"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if resp.Model != "demo" || resp.ID == "" || len(resp.Choices) != 1 || resp.Choices[0].Message.Role != schema.RoleAssistant || resp.Choices[0].FinishReason != schema.FinishStop {
		t.Errorf("response %+v", resp)
	}
	// Prompt tokens are the words of every message.
	if u := resp.Usage; u.PromptTokens != 7 || u.CompletionTokens != 5 || u.TotalTokens != 12 {
		t.Errorf("usage %+v, want 7 + 5 = 12", u)
	}
	again, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Text() != resp.Text() || again.ID == resp.ID {
		t.Errorf("second reply %q id %q: want the same text under a new id", again.Text(), again.ID)
	}
}

func TestSim_ZeroConfig_Answers16TokensWith8Slots(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{})
	resp, err := p.Complete(context.Background(), ask("w"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.CompletionTokens != 16 || len(strings.Fields(resp.Text())) != 16 || resp.Model != "sim" {
		t.Errorf("usage %+v text %q model %q", resp.Usage, resp.Text(), resp.Model)
	}
	if p.Parallel() != 8 {
		t.Errorf("parallel %d, want 8", p.Parallel())
	}
}

func TestSim_NoUserWords_RepliesSim(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{Tokens: 3})
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{{Role: schema.RoleSystem, Content: "only a system prompt"}, {Role: schema.RoleUser, Content: "  "}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != "sim sim sim" {
		t.Fatalf("text %q", resp.Text())
	}
}

func TestSim_MaxTokensBelowLength_CutsReplyWithFinishLength(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{Tokens: 16})
	for name, req := range map[string]*schema.Request{
		"max_tokens":            {Messages: ask("a b").Messages, MaxTokens: limit(3)},
		"max_completion_tokens": {Messages: ask("a b").Messages, MaxCompletionTokens: limit(3)},
	} {
		resp, err := p.Complete(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text() != "a b a" || resp.Usage.CompletionTokens != 3 || resp.Choices[0].FinishReason != schema.FinishLength {
			t.Errorf("%s 3: text %q usage %+v finish %q", name, resp.Text(), resp.Usage, resp.Choices[0].FinishReason)
		}
	}
}

func TestSim_ErrorRateOne_FailsEveryCallWithProviderError500(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{ErrorRate: 1, Parallel: 1})
	for i := range 10 {
		emitted := 0
		_, err := p.Stream(context.Background(), ask("x"), func(schema.ChunkChoice) error { emitted++; return nil })
		var se *schema.Error
		if !errors.As(err, &se) || se.Code != schema.CodeProviderError || se.ProviderStatus != 500 || se.Status != 502 {
			t.Fatalf("call %d: err %v, want provider_error from a simulated HTTP 500", i, err)
		}
		if emitted != 0 {
			t.Fatalf("call %d emitted %d tokens before failing", i, emitted)
		}
	}
	// Each failure gave its slot back: the one slot is free.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := p.Complete(ctx, ask("x")); schema.CodeOf(err) != schema.CodeProviderError {
		t.Fatalf("after 10 failures on 1 slot: %v, want provider_error (not a wait for a slot)", err)
	}
}

func TestSim_New_RejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]sim.Config{
		"error_rate below 0":   {ErrorRate: -0.1},
		"error_rate above 1":   {ErrorRate: 1.5},
		"negative token speed": {TokensPerSecond: -1},
	} {
		if _, err := sim.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSim_Stream_EmitsOneWordPerTokenInOrder(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{Tokens: 5, TokensPerSecond: 5000})
	var pieces []string
	resp, err := p.Stream(context.Background(), ask("one two three"), func(c schema.ChunkChoice) error {
		s := c.Delta.Content
		pieces = append(pieces, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"one", " two", " three", " one", " two"}
	if strings.Join(pieces, "|") != strings.Join(want, "|") {
		t.Errorf("pieces %q, want %q", pieces, want)
	}
	if resp.Text() != strings.Join(pieces, "") || resp.Usage.CompletionTokens != 5 {
		t.Errorf("response %q usage %+v", resp.Text(), resp.Usage)
	}
}

func TestSim_Stream_EmitErrorStopsStreamAndIsReturned(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{Tokens: 10})
	stop := errors.New("reader went away")
	calls := 0
	_, err := p.Stream(context.Background(), ask("x"), func(schema.ChunkChoice) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("err %v after %d emits, want emit's error after 2", err, calls)
	}
}

func TestSim_TokensPerSecond_CtxCancelBetweenTokensEndsCall(t *testing.T) {
	t.Parallel()
	// One token a second: the second token is due long after the cancel.
	p := newSim(t, sim.Config{Tokens: 10, TokensPerSecond: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pieces []string
	_, err := p.Stream(ctx, ask("tick"), func(c schema.ChunkChoice) error {
		s := c.Delta.Content
		pieces = append(pieces, s)
		cancel()
		return nil
	})
	if schema.CodeOf(err) != schema.CodeCancelled {
		t.Fatalf("err %v, want cancelled", err)
	}
	if len(pieces) != 1 {
		t.Fatalf("%d tokens after the cancel at the first, want 1", len(pieces))
	}
}

func TestSim_TTFT_CtxDeadlineEndsCallWithTimeout(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{TTFT: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	emitted := false
	_, err := p.Stream(ctx, ask("x"), func(schema.ChunkChoice) error { emitted = true; return nil })
	if schema.CodeOf(err) != schema.CodeTimeout || emitted {
		t.Fatalf("err %v (emitted %v), want timeout before the first token", err, emitted)
	}
}

func TestSim_CancelledCtx_ReturnsTypedCancelled(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{Tokens: 3})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A free slot and a done ctx are both ready; either way the error must
	// be typed, as the Provider contract asks.
	for i := range 50 {
		_, err := p.Complete(ctx, ask("x"))
		var se *schema.Error
		if !errors.As(err, &se) || se.Code != schema.CodeCancelled {
			t.Fatalf("call %d: err %v (%T), want a typed cancelled error", i, err, err)
		}
	}
}

func TestSim_ParallelSlots_BoundConcurrentCalls(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{Parallel: 2, Tokens: 1})
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	var inside, maxInside atomic.Int64
	emit := func(schema.ChunkChoice) error {
		n := inside.Add(1)
		defer inside.Add(-1)
		for {
			m := maxInside.Load()
			if n <= m || maxInside.CompareAndSwap(m, n) {
				break
			}
		}
		entered <- struct{}{}
		<-release
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 2 {
		wg.Go(func() {
			_, err := p.Stream(context.Background(), ask("x"), emit)
			errs <- err
		})
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(wait):
			t.Fatal("the first two calls never started")
		}
	}
	// Both slots are held: a third call waits for one until its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	third := false
	_, err := p.Stream(ctx, ask("x"), func(schema.ChunkChoice) error { third = true; return nil })
	if third || schema.CodeOf(err) != schema.CodeTimeout {
		t.Fatalf("third call with both slots held: err %v, emitted %v; want a timeout waiting for a slot", err, third)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := maxInside.Load(); m != 2 {
		t.Fatalf("%d calls ran at once, want 2", m)
	}
	// The slots came back.
	if _, err := p.Complete(context.Background(), ask("x")); err != nil {
		t.Fatal(err)
	}
}

// The simulator satisfies both interfaces a worker looks for.
var (
	_ provider.Provider = (*sim.Provider)(nil)
	_ provider.Streamer = (*sim.Provider)(nil)
)
