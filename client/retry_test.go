package client_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

func okReply(t *testing.T, e *env, m *nats.Msg) {
	resp := &schema.Response{Object: schema.ObjectCompletion, Choices: []schema.Choice{{Message: schema.Message{Role: "assistant", Content: "ok"}}}}
	if err := broker.Reply(e.worker, m.Reply, broker.CodecOf(m), resp); err != nil {
		t.Error(err)
	}
}

func TestClient_NoResponders_RetriedUntilADispatcherListens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(client.Config{NoResponderRetries: 10})
	type result struct {
		resp *schema.Response
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		resp, err := c.Complete(context.Background(), "tier1", &schema.Request{Messages: []schema.Message{{Role: "user", Content: "x"}}})
		done <- result{resp, err}
	}()
	// No dispatcher for a while (as during a restart), then one appears.
	// The delay is not a synchronisation: whenever it comes, the client
	// must keep trying until it does.
	time.Sleep(250 * time.Millisecond)
	e.respond("tier1", func(m *nats.Msg, _ *schema.Request) { okReply(t, e, m) })
	r := <-done
	if r.err != nil || r.resp.Text() != "ok" {
		t.Fatalf("resp %v err %v, want an answer once a dispatcher listened", r.resp, r.err)
	}
	if time.Since(start) < 250*time.Millisecond {
		t.Fatal("answered before any dispatcher listened")
	}
}

func TestClient_NoResponders_GivesUpAfterRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(client.Config{NoResponderRetries: -1})
	_, err := c.Complete(context.Background(), "tier1", &schema.Request{Messages: []schema.Message{{Role: "user", Content: "x"}}})
	if schema.CodeOf(err) != schema.CodeNoDeployments {
		t.Fatalf("err = %v", err)
	}
}

func TestClient_AttemptTimeout_SendsAgainWhenNoAnswerCame(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var seen atomic.Int64
	jobs := e.respond("tier1", func(m *nats.Msg, _ *schema.Request) {
		if seen.Add(1) == 1 {
			return // the first dispatcher "dies" holding the job
		}
		okReply(t, e, m)
	})
	c := e.client(client.Config{AttemptTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := c.Complete(ctx, "tier1", &schema.Request{Messages: []schema.Message{{Role: "user", Content: "x"}}})
	if err != nil || resp.Text() != "ok" {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if n := len(jobs); n != 2 {
		t.Fatalf("job sent %d times, want 2", n)
	}
}

func TestClient_WithoutAttemptTimeout_WaitsForTheDeadlineOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	jobs := e.respond("tier1", func(*nats.Msg, *schema.Request) {})
	c := e.client(client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.Complete(ctx, "tier1", &schema.Request{Messages: []schema.Message{{Role: "user", Content: "x"}}})
	if schema.CodeOf(err) != schema.CodeTimeout {
		t.Fatalf("err = %v", err)
	}
	if n := len(jobs); n != 1 {
		t.Fatalf("job sent %d times, want once (repeating is not safe by default)", n)
	}
}
