package worker_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

func TestWorker_Take_HandlesJobAsIfFromNATS(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(provider.Func(func(_ context.Context, req *schema.Request) (*schema.Response, error) {
		return &schema.Response{Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: "echo: " + req.Messages[0].Content}, FinishReason: schema.FinishStop}}}, nil
	}))
	inbox := e.nc.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	body, err := schema.JSON.Marshal(ask("hi"))
	if err != nil {
		t.Fatal(err)
	}
	job := func(subject string) *nats.Msg {
		return &nats.Msg{Subject: subject, Reply: inbox, Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}}, Data: body}
	}
	if w.Take(job(w.Subject() + "x")) {
		t.Fatal("took a job on another subject")
	}
	if !w.Take(job(w.Subject())) {
		t.Fatal("a running worker did not take a job")
	}
	reply, err := replies.NextMsg(wait)
	if err != nil {
		t.Fatal(err)
	}
	if broker.IsError(reply) {
		t.Fatalf("error reply: %s", reply.Header.Get(schema.HeaderErrorMessage))
	}
	resp, err := schema.DecodeReply(schema.JSON, reply.Data, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Choices[0].Message.Content); got != "echo: hi" {
		t.Fatalf("answer %q", got)
	}
	// Checked as any job: a reply subject that is no inbox is refused.
	bad := job(w.Subject())
	bad.Reply = e.subjects.Jobs("tier1")
	if !w.Take(bad) {
		t.Fatal("a running worker did not take a job")
	}
	if n := w.ServiceStats().Dropped; n != 1 {
		t.Fatalf("dropped %d jobs, want the one whose reply subject is no inbox", n)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.Take(job(w.Subject())) {
		t.Fatal("a stopped worker took a job")
	}
	if w.Conn() == nil {
		t.Fatal("no connection")
	}
}
