package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

// local is a gateway and a dispatcher sharing one connection and the
// gateway's inboxes, as llmq up --gateway runs them.
type local struct {
	*env
	shared  *nats.Conn
	inboxes *broker.Inboxes
}

// setupLocal starts a gateway and a dispatcher that share one connection,
// with the dispatcher handed to the gateway as its in-process dispatcher.
func setupLocal(t *testing.T) *local {
	t.Helper()
	srv := brokertest.NewServer(t, brokertest.Options{})
	l := &local{env: &env{t: t, srv: srv, subjects: brokertest.Subjects(t), rec: &recorder{}}, inboxes: &broker.Inboxes{}}
	l.shared = srv.Connect("llmq-up")
	d, err := dispatcher.New(dispatcher.Config{Conn: l.shared, Subjects: l.subjects, Logger: quiet(), Tiers: []string{"tier1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	l.d = d
	l.startGateway(gateway.Config{Conn: l.shared, Dispatcher: d, Inboxes: l.inboxes})
	return l
}

// localWorker starts a worker of tier on the shared connection, handed
// the gateway's inboxes and added to the dispatcher as local.
func (l *local) localWorker(tier, deployment string, p provider.Provider) {
	l.t.Helper()
	w := l.worker(tier, deployment, 4, p, func(c *worker.Config) { c.Conn, c.Inboxes = l.shared, l.inboxes })
	if err := l.d.AddLocal(w); err != nil {
		l.t.Fatal(err)
	}
}

// spy counts the messages published on subject from now on: the server
// queues each for the spy as it routes it, and the PONG of the spy's
// flush comes after all of those.
func (l *local) spy(subject string) func() int {
	l.t.Helper()
	c := l.srv.Connect("spy")
	sub, err := c.SubscribeSync(subject)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		l.t.Fatal(err)
	}
	return func() int {
		l.t.Helper()
		if err := c.Flush(); err != nil {
			l.t.Fatal(err)
		}
		n, _, err := sub.Pending()
		if err != nil {
			l.t.Fatal(err)
		}
		return n
	}
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
	l := setupLocal(t)
	l.worker("tier1", "d1", 4, echo()) // on its own connection: not local
	jobs := l.spy(l.subjects.JobsWildcard())

	const n = 5
	for i := range n {
		wantCompletion(t, l.post(chat("tier1", "hi")), "echo: hi")
		if got := l.d.Stats().Received; got != uint64(i+1) {
			t.Fatalf("dispatcher received %d jobs after %d requests", got, i+1)
		}
	}
	// A streamed request too: its chunks come over NATS.
	l.worker("words", "w1", 2, &words{pieces: []string{"one", " two"}})
	resp := l.post(chat("words", "x", `,"stream":true`))
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
	wantError(t, l.post(chat("no-such-tier", "hi")), http.StatusNotFound, "invalid_request_error", "model_not_found", schema.CodeUnknownTier)

	// The spy sees jobs that are published: one sent by a client over
	// NATS reaches it, so its count of the gateway's jobs means something.
	c := client.New(l.srv.Connect("producer"), client.Config{Subjects: l.subjects, Timeout: wait})
	if _, err := c.Complete(context.Background(), "tier1", &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "x"}}}); err != nil {
		t.Fatal(err)
	}
	if got := jobs(); got != 1 {
		t.Fatalf("%d jobs published on the job subjects, want 1 (the client's): the gateway's went in process", got)
	}
	if got := l.d.Stats().Received; got != n+3 {
		t.Errorf("dispatcher received %d jobs, want %d", got, n+3)
	}
}

func TestGateway_LocalWorker_RepliesInProcess(t *testing.T) {
	t.Parallel()
	l := setupLocal(t)
	l.localWorker("tier1", "near", echo())
	l.localWorker("bad", "broken", failing(schema.NewError(schema.CodeBadRequest, "no such thing")))
	forwards := l.spy(l.subjects.Prefix + ".w.>")
	replies := l.spy("_INBOX.>")
	for range 3 {
		wantCompletion(t, l.post(chat("tier1", "hi")), "echo: hi")
	}
	if n := forwards(); n != 0 {
		t.Errorf("%d jobs published to workers, want 0: they are local", n)
	}
	if n := replies(); n != 0 {
		t.Errorf("%d replies published to inboxes, want 0: the worker is local", n)
	}
	// A failed call is the dispatcher's to retry or answer (its answer
	// comes over NATS): it reaches the client all the same.
	wantError(t, l.post(chat("bad", "hi")), http.StatusBadRequest, "invalid_request_error", schema.CodeBadRequest, schema.CodeBadRequest)
	// The spy on inboxes sees replies that are published: a client's job,
	// whose inbox is not the gateway's, is answered over NATS.
	replies = l.spy("_INBOX.>")
	c := client.New(l.srv.Connect("producer"), client.Config{Subjects: l.subjects, Timeout: wait})
	if _, err := c.Complete(context.Background(), "tier1", &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "x"}}}); err != nil {
		t.Fatal(err)
	}
	if n := replies(); n != 1 {
		t.Errorf("%d replies published, want the client's 1", n)
	}
}

func TestGateway_LocalDispatcher_Stopped_JobsGoOverNATS(t *testing.T) {
	t.Parallel()
	l := setupLocal(t)
	jobs := l.spy(l.subjects.JobsWildcard())
	local := l.d
	l.startDispatcher(dispatcher.Config{}) // another, on its own connection
	l.worker("tier1", "d1", 4, echo())
	if err := local.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantCompletion(t, l.post(chat("tier1", "after")), "echo: after")
	if got := l.d.Stats().Received; got != 1 {
		t.Errorf("the other dispatcher received %d jobs, want 1", got)
	}
	if got := jobs(); got != 1 {
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
