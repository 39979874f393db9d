package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/schema"
)

// setupLocal starts a gateway and a dispatcher that share one connection,
// as llmq up --gateway runs them, with the dispatcher handed to the
// gateway as its in-process dispatcher; and a spy that counts every job
// published on the job subjects.
func setupLocal(t *testing.T) (*env, func() int) {
	t.Helper()
	srv := brokertest.NewServer(t, brokertest.Options{})
	e := &env{t: t, srv: srv, subjects: brokertest.Subjects(t), rec: &recorder{}}
	shared := srv.Connect("llmq-up")
	d, err := dispatcher.New(dispatcher.Config{Conn: shared, Subjects: e.subjects, Logger: quiet(), Tiers: []string{"tier1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	e.d = d
	spy := srv.Connect("spy")
	sub, err := spy.SubscribeSync(e.subjects.JobsWildcard())
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	// published counts the jobs the spy got: the server queues each job
	// for the spy as it routes it, before any reply to it can exist, and
	// the flush's PONG comes after all of them.
	published := func() int {
		t.Helper()
		if err := spy.Flush(); err != nil {
			t.Fatal(err)
		}
		n, _, err := sub.Pending()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	e.startGateway(gateway.Config{Conn: shared, Dispatcher: d})
	return e, published
}

func wantCompletion(t *testing.T, resp *http.Response, content string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got schema.Response
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Choices) != 1 || string(got.Choices[0].Message.Content) != content {
		t.Fatalf("answer %s, want content %q", body, content)
	}
}

func TestGateway_LocalDispatcher_TakesJobsWithoutPublishingThem(t *testing.T) {
	t.Parallel()
	e, published := setupLocal(t)
	e.worker("tier1", "d1", 4, echo())

	const n = 5
	for i := range n {
		wantCompletion(t, e.post(chat("tier1", "hi")), "echo: hi")
		if got := e.d.Stats().Received; got != uint64(i+1) {
			t.Fatalf("dispatcher received %d jobs after %d requests", got, i+1)
		}
	}
	// A streamed request too: its chunks come over NATS.
	e.worker("words", "w1", 2, &words{pieces: []string{"one", " two"}})
	resp := e.post(chat("words", "x", `,"stream":true`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	var text strings.Builder
	events := sse(t, resp.Body)
	for _, ev := range events[:len(events)-1] {
		var c schema.Chunk
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		for _, ch := range c.Choices {
			text.WriteString(string(ch.Delta.Content))
		}
	}
	if text.String() != "one two" || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream %q", events)
	}
	// Errors the dispatcher answers come back over NATS as well.
	wantError(t, e.post(chat("no-such-tier", "hi")), http.StatusNotFound, "invalid_request_error", "model_not_found", schema.CodeUnknownTier)

	// The spy sees jobs that are published: one sent by a client over
	// NATS reaches it, so its count of the gateway's jobs means something.
	c := client.New(e.srv.Connect("producer"), client.Config{Subjects: e.subjects, Timeout: wait})
	if _, err := c.Complete(context.Background(), "tier1", &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "x"}}}); err != nil {
		t.Fatal(err)
	}
	if got := published(); got != 1 {
		t.Fatalf("%d jobs published on the job subjects, want 1 (the client's): the gateway's went in process", got)
	}
	if got := e.d.Stats().Received; got != n+3 {
		t.Errorf("dispatcher received %d jobs, want %d", got, n+3)
	}
}

func TestGateway_LocalDispatcher_Stopped_JobsGoOverNATS(t *testing.T) {
	t.Parallel()
	e, published := setupLocal(t)
	local := e.d
	e.startDispatcher(dispatcher.Config{}) // another, on its own connection
	e.worker("tier1", "d1", 4, echo())
	if err := local.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantCompletion(t, e.post(chat("tier1", "after")), "echo: after")
	if got := e.d.Stats().Received; got != 1 {
		t.Errorf("the other dispatcher received %d jobs, want 1", got)
	}
	if got := published(); got != 1 {
		t.Errorf("%d jobs published on NATS, want 1", got)
	}
}

func TestGateway_LocalDispatcher_OnAnotherConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{})
	s := brokertest.Subjects(t)
	d, err := dispatcher.New(dispatcher.Config{Conn: srv.Connect("d"), Subjects: s, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(gateway.Config{Conn: srv.Connect("g"), Subjects: s, Logger: quiet(), Dispatcher: d})
	if err == nil || !strings.Contains(err.Error(), "Conn") {
		t.Fatalf("New: %v, want an error about the connection", err)
	}
}
