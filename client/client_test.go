package client_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

func TestCompleteDecodesTheReply(t *testing.T) {
	t.Parallel()
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		t.Run(codec.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			jobs := e.respond("tier1", func(m *nats.Msg, req *schema.Request) {
				resp := &schema.Response{ID: "r1", Object: schema.ObjectCompletion, Model: "m",
					Choices: []schema.Choice{{Message: schema.Message{Role: "assistant", Content: "echo: " + req.Messages[0].Content}, FinishReason: "stop"}},
					Usage:   schema.Usage{PromptTokens: 2, CompletionTokens: 3, TotalTokens: 5},
					Routing: &schema.Routing{Tier: "tier1", Worker: "w1", Attempts: 1}}
				_ = broker.Reply(e.worker, m.Reply, broker.CodecOf(m), resp)
			})
			req := hello()
			req.Stream = true // Complete ignores it
			resp, err := e.client(client.Config{Codec: codec}).Complete(context.Background(), "tier1", req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text() != "echo: hello" || resp.Usage.TotalTokens != 5 || resp.Routing == nil || resp.Routing.Worker != "w1" {
				t.Fatalf("resp = %+v", resp)
			}
			j := e.nextJob(jobs)
			if j.req.Stream {
				t.Error("job sent with stream set")
			}
			if !req.Stream {
				t.Error("Complete changed the caller's request")
			}
			if got := j.msg.Header.Get(schema.HeaderContentType); got != codec.ContentType() {
				t.Errorf("Content-Type = %q, want %q", got, codec.ContentType())
			}
			if j.msg.Subject != e.subjects.Jobs("tier1") {
				t.Errorf("subject = %q", j.msg.Subject)
			}
		})
	}
}

func TestCompleteReturnsTypedErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reply *schema.Error
	}{
		{"rate limited with retry-after", schema.NewError(schema.CodeRateLimited, "slow down").WithRetryAfter(1500 * time.Millisecond)},
		{"unknown tier", schema.NewError(schema.CodeUnknownTier, `unknown tier "x" (known: a, b)`)},
		{"provider error with upstream status", func() *schema.Error {
			e := schema.NewError(schema.CodeProviderError, "ollama: HTTP 500: boom")
			e.ProviderStatus = 500
			return e
		}()},
	}
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		for _, tt := range tests {
			t.Run(codec.String()+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				e.respond("t", func(m *nats.Msg, _ *schema.Request) {
					_ = broker.ReplyError(e.worker, m.Reply, broker.CodecOf(m), tt.reply)
				})
				resp, err := e.client(client.Config{Codec: codec}).Complete(context.Background(), "t", hello())
				if resp != nil {
					t.Fatalf("resp = %+v", resp)
				}
				got := wantCode(t, err, tt.reply.Code)
				if *got != *tt.reply {
					t.Fatalf("err = %+v, want %+v", got, tt.reply)
				}
				if !errors.Is(err, schema.NewError(tt.reply.Code, "")) {
					t.Fatal("errors.Is on the code fails")
				}
			})
		}
	}
	t.Run("undecodable error body is internal", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.respond("t", func(m *nats.Msg, _ *schema.Request) {
			_ = e.worker.PublishMsg(&nats.Msg{Subject: m.Reply, Data: []byte{0xc1}, Header: nats.Header{schema.HeaderStatus: {"500"}}})
		})
		_, err := e.client(client.Config{}).Complete(context.Background(), "t", hello())
		wantCode(t, err, schema.CodeInternal)
	})
}

func TestCompleteSendsTheContextDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	jobs := e.respond("slow", nil) // never replies
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	dl, _ := ctx.Deadline()
	start := time.Now()
	_, err := e.client(client.Config{Timeout: time.Hour}).Complete(ctx, "slow", hello())
	wantCode(t, err, schema.CodeTimeout)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Complete took %v after a 300 ms deadline", d)
	}
	j := e.nextJob(jobs)
	got, perr := strconv.ParseInt(j.msg.Header.Get(schema.HeaderDeadline), 10, 64)
	if perr != nil || got != dl.UnixMilli() {
		t.Fatalf("%s = %q, want %d (the ctx deadline in Unix ms)", schema.HeaderDeadline, j.msg.Header.Get(schema.HeaderDeadline), dl.UnixMilli())
	}
}

func TestCompleteAppliesConfigTimeoutWithoutDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	jobs := e.respond("slow", nil)
	before := time.Now()
	_, err := e.client(client.Config{Timeout: 200 * time.Millisecond}).Complete(context.Background(), "slow", hello())
	wantCode(t, err, schema.CodeTimeout)
	j := e.nextJob(jobs)
	got, _ := strconv.ParseInt(j.msg.Header.Get(schema.HeaderDeadline), 10, 64)
	if lo, hi := before.Add(200*time.Millisecond).UnixMilli(), time.Now().UnixMilli(); got < lo || got > hi {
		t.Fatalf("deadline %d, want within [%d, %d]", got, lo, hi)
	}
}

func TestCompleteCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.respond("slow", nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := e.client(client.Config{}).Complete(ctx, "slow", hello())
	wantCode(t, err, schema.CodeCancelled)
}

func TestCompleteWithoutResponderIsNoDeployments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start := time.Now()
	_, err := e.client(client.Config{}).Complete(context.Background(), "nobody", hello())
	got := wantCode(t, err, schema.CodeNoDeployments)
	if !strings.Contains(got.Message, e.subjects.Jobs("nobody")) {
		t.Errorf("message %q does not name the subject", got.Message)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v: no-responders should answer at once", d)
	}
}

// TestInvalidTierIsRefusedBeforeSending: names that are no model name. (A
// model name that cannot be a subject, such as "a..b", goes on
// <prefix>.jobs._: TestClient_NamesAModelBySubjectElseByHeader.)
func TestInvalidTierIsRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	for _, tier := range []string{"", "a b", "a.*", ">", "a\x00b"} {
		t.Run(tier, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			sent := e.count(e.subjects.Prefix + ".>")
			c := e.client(client.Config{})
			_, err := c.Complete(context.Background(), tier, hello())
			wantCode(t, err, schema.CodeUnknownTier)
			s, err := c.Stream(context.Background(), tier, hello())
			if s != nil {
				s.Close()
			}
			wantCode(t, err, schema.CodeUnknownTier)
			if n := sent(); n != 0 {
				t.Fatalf("%d messages sent", n)
			}
		})
	}
}

func TestJobOverMaxPayloadIsRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{MaxPayload: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	connect := func() *nats.Conn {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	e := &env{t: t, subjects: broker.Subjects{Prefix: "mp"}, producer: connect(), worker: connect()}
	e.respond("t", func(m *nats.Msg, _ *schema.Request) {
		_ = broker.Reply(e.worker, m.Reply, broker.CodecOf(m), &schema.Response{ID: "ok"})
	})
	sent := e.count("mp.jobs.t")
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"small job goes through", 100, false},
		// Under the server's 4096 bytes, but without the 1 KiB kept for headers.
		{"job within 1 KiB of the limit", 3500, true},
		{"job over the limit", 10000, true},
	}
	c := e.client(client.Config{})
	want := 0
	for _, tt := range tests {
		req := &schema.Request{Messages: []schema.Message{{Role: "user", Content: schema.Content(strings.Repeat("x", tt.size))}}}
		resp, err := c.Complete(context.Background(), "t", req)
		if !tt.wantErr {
			want++
			if err != nil || resp.ID != "ok" {
				t.Fatalf("%s: %v", tt.name, err)
			}
			continue
		}
		got := wantCode(t, err, schema.CodePayloadTooLarge)
		if !strings.Contains(got.Message, "4096") {
			t.Errorf("%s: message %q does not give the limit", tt.name, got.Message)
		}
		s, err := c.Stream(context.Background(), "t", req)
		if s != nil {
			s.Close()
		}
		wantCode(t, err, schema.CodePayloadTooLarge)
	}
	if n := sent(); n != want {
		t.Fatalf("%d jobs reached the subject, want %d", n, want)
	}
}
