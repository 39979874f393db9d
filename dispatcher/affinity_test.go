package dispatcher_test

import (
	"context"
	"strings"
	"testing"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// turn is turn n of the conversation that opens with first: the earlier
// turns (user and assistant messages), then a new user message text.
func turn(first string, n int, text string) *schema.Request {
	msgs := []schema.Message{{Role: schema.RoleSystem, Content: "be brief"}, {Role: schema.RoleUser, Content: schema.Content(first)}}
	for i := 1; i < n; i++ {
		msgs = append(msgs, schema.Message{Role: schema.RoleAssistant, Content: "ok"}, schema.Message{Role: schema.RoleUser, Content: schema.Content("more " + first)})
	}
	msgs[len(msgs)-1].Content = schema.Content(text)
	if n == 1 {
		msgs[1].Content = schema.Content(first)
	}
	return &schema.Request{Messages: msgs}
}

// holding answers at once, except calls whose last message starts with
// "hold": those block until release is closed, each first signalling
// held.
func holding(held chan<- string, name string, release <-chan struct{}) provider.Func {
	return func(ctx context.Context, req *schema.Request) (*schema.Response, error) {
		if strings.HasPrefix(string(req.Messages[len(req.Messages)-1].Content), "hold") {
			held <- name
			select {
			case <-release:
			case <-ctx.Done():
				return nil, provider.TransportError(ctx, ctx.Err())
			}
		}
		return echo()(ctx, req)
	}
}

// Conversation affinity on real NATS: every turn of a conversation goes to
// one host while it has room; when its slots are all taken, the next turn
// spills to the other host; once the host frees, turns come back to it.
func TestAffinity_ConversationStaysOnItsHostWhileItHasRoom_SpillsWhenFull(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "least-busy", Affinity: true})
	held := make(chan string, 8)
	release := make(chan struct{})
	e.worker("tier1", "gpu-1", 2, holding(held, "gpu-1", release))
	e.worker("tier1", "gpu-2", 2, holding(held, "gpu-2", release))
	waitWorkers(t, d, "tier1", 2)
	// complete sends one turn and waits until the dispatcher has seen it
	// finish: a host's room is what its beats say, and instant calls
	// finish faster than it beats.
	sent := map[string]uint64{}
	complete := func(req *schema.Request) string {
		t.Helper()
		resp, err := e.client.Complete(context.Background(), "tier1", req)
		if err != nil {
			t.Fatal(err)
		}
		dep := resp.Routing.Deployment
		sent[dep]++
		awaitSettled(t, d, dep, sent[dep])
		return dep
	}

	// Several conversations, each with several turns: each stays on one
	// host, and between them they use both.
	home := map[string]string{}
	used := map[string]bool{}
	for _, conv := range []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"} {
		for n := 1; n <= 5; n++ {
			dep := complete(turn(conv, n, "question"))
			if n == 1 {
				home[conv] = dep
				used[dep] = true
			} else if dep != home[conv] {
				t.Fatalf("turn %d of %s went to %s, its earlier turns to %s", n, conv, dep, home[conv])
			}
		}
	}
	if len(used) != 2 {
		t.Fatalf("conversations' homes %v: want both hosts used", home)
	}

	// Fill alpha's host with two held turns of alpha: the next turn
	// spills to the other host.
	hostA := home["alpha"]
	other := "gpu-1"
	if hostA == other {
		other = "gpu-2"
	}
	done := make(chan string, 2)
	for range 2 {
		go func() {
			resp, err := e.client.Complete(context.Background(), "tier1", turn("alpha", 6, "hold on"))
			if err != nil {
				done <- "error: " + err.Error()
				return
			}
			done <- resp.Routing.Deployment
		}()
	}
	for range 2 {
		if got := <-held; got != hostA {
			t.Fatalf("a held turn of alpha went to %s, want its host %s", got, hostA)
		}
	}
	if dep := complete(turn("alpha", 7, "question")); dep != other {
		t.Fatalf("with %s full, alpha's next turn went to %s, want it spilled to %s", hostA, dep, other)
	}
	close(release)
	for range 2 {
		if got := <-done; got != hostA {
			t.Fatalf("held turn answered from %s, want %s", got, hostA)
		}
	}
	sent[hostA] += 2
	awaitSettled(t, d, hostA, sent[hostA])
	if dep := complete(turn("alpha", 8, "question")); dep != hostA {
		t.Fatalf("with %s free again, alpha's next turn went to %s", hostA, dep)
	}
}

// An explicit session (Llmq-Session header or metadata.session_id) keeps
// jobs whose messages have nothing in common on one host.
func TestAffinity_ExplicitSession_KeepsUnrelatedPromptsTogether(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher(dispatcher.Config{Tiers: []string{"tier1"}, Strategy: "simple-shuffle", Affinity: true})
	e.worker("tier1", "gpu-1", 4, echo())
	e.worker("tier1", "gpu-2", 4, echo())
	e.worker("tier1", "gpu-3", 4, echo())
	waitWorkers(t, d, "tier1", 3)
	sent := map[string]uint64{}
	for _, session := range []string{"s-1", "s-2", "s-3"} {
		seen := map[string]int{}
		for i := range 12 {
			req := ask(strings.Repeat("x", i+1))
			req.Metadata = schema.Metadata{"session_id": session}
			resp, err := e.client.Complete(context.Background(), "tier1", req)
			if err != nil {
				t.Fatal(err)
			}
			dep := resp.Routing.Deployment
			seen[dep]++
			sent[dep]++
			awaitSettled(t, d, dep, sent[dep]) // see complete in the test above
		}
		if len(seen) != 1 {
			t.Fatalf("session %s went to %v, want one host", session, seen)
		}
	}
	// Without affinity the same jobs spread (simple-shuffle).
	d2 := e.dispatcher(dispatcher.Config{Tiers: []string{"tier2"}, Strategy: "simple-shuffle"})
	e.worker("tier2", "gpu-4", 4, echo())
	e.worker("tier2", "gpu-5", 4, echo())
	waitWorkers(t, d2, "tier2", 2)
	seen := map[string]int{}
	for i := range 24 {
		req := ask(strings.Repeat("x", i+1))
		req.Metadata = schema.Metadata{"session_id": "s-1"}
		resp, err := e.client.Complete(context.Background(), "tier2", req)
		if err != nil {
			t.Fatal(err)
		}
		seen[resp.Routing.Deployment]++
	}
	if len(seen) != 2 {
		t.Fatalf("without affinity 24 jobs went to %v, want both hosts", seen)
	}
}
