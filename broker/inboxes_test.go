package broker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

func TestInboxes_DeliverOnlyToRegisteredSubjects(t *testing.T) {
	t.Parallel()
	var in broker.Inboxes
	ch := make(chan *nats.Msg, 1)
	unregister := in.Register("_INBOX.a", ch)
	if in.Deliver(&nats.Msg{Subject: "_INBOX.b"}) {
		t.Fatal("delivered a message for a subject nobody registered")
	}
	if !in.Deliver(&nats.Msg{Subject: "_INBOX.a", Data: []byte("1")}) {
		t.Fatal("did not deliver to a registered subject")
	}
	// Full channel: taken (not to be published) and dropped, not blocked on.
	if !in.Deliver(&nats.Msg{Subject: "_INBOX.a", Data: []byte("2")}) {
		t.Fatal("a full channel's message was left to be published")
	}
	if got := <-ch; string(got.Data) != "1" || len(ch) != 0 {
		t.Fatalf("channel got %q and %d more", got.Data, len(ch))
	}
	unregister()
	if in.Deliver(&nats.Msg{Subject: "_INBOX.a"}) {
		t.Fatal("delivered after unregister")
	}
	var none *broker.Inboxes
	if none.Deliver(&nats.Msg{Subject: "_INBOX.a"}) {
		t.Fatal("a nil Inboxes delivered")
	}
}

func TestReplyVia_HandsOverRegisteredRepliesAndPublishesTheRest(t *testing.T) {
	t.Parallel()
	pub, sub := pair(t)
	var in broker.Inboxes
	local := make(chan *nats.Msg, 2)
	defer in.Register("_INBOX.local", local)()
	remote, err := sub.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	resp := &schema.Response{Object: "chat.completion"}
	if err := broker.ReplyVia(&in, pub, "_INBOX.local", schema.MsgPack, resp); err != nil {
		t.Fatal(err)
	}
	if err := broker.ReplyErrorVia(&in, pub, "_INBOX.local", schema.JSON, schema.NewError(schema.CodeTimeout, "late")); err != nil {
		t.Fatal(err)
	}
	if err := broker.ReplyVia(&in, pub, "_INBOX.remote", schema.JSON, resp); err != nil {
		t.Fatal(err)
	}
	ok := <-local
	if got, err := schema.DecodeReply(broker.CodecOf(ok), ok.Data, broker.IsError(ok)); err != nil || got.Object != "chat.completion" {
		t.Fatalf("local reply: %+v, %v", got, err)
	}
	if e := <-local; !broker.IsError(e) || e.Header.Get(schema.HeaderErrorCode) != schema.CodeTimeout {
		t.Fatalf("local error reply headers %v", e.Header)
	}
	if m := receive(t, remote); m.Subject != "_INBOX.remote" {
		t.Fatalf("published %s", m.Subject)
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := remote.Pending(); n != 0 {
		t.Fatalf("%d more replies published; the local ones must not be", n)
	}
	// Over the max payload: refused as its publish would be, never handed over.
	big := &schema.Response{Object: strings.Repeat("x", int(pub.MaxPayload()))}
	if err := broker.ReplyVia(&in, pub, "_INBOX.local", schema.JSON, big); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("reply over the max payload: %v", err)
	}
	if len(local) != 0 {
		t.Fatal("an oversize reply was handed over")
	}
}
