package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

var codecs = []schema.Codec{schema.JSON, schema.MsgPack}

// pair returns two connections to one fresh server.
func pair(t *testing.T) (pub, sub *nats.Conn) {
	t.Helper()
	srv := startServer(t, broker.EmbeddedConfig{})
	conn := func() *nats.Conn {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	return conn(), conn()
}

func receive(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReplyPublishesEncodedValueWithHeaders(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			t.Parallel()
			pub, subc := pair(t)
			sub, err := subc.SubscribeSync("_INBOX.reply")
			if err != nil {
				t.Fatal(err)
			}
			if err := subc.Flush(); err != nil {
				t.Fatal(err)
			}
			resp := &schema.Response{ID: "r1", Object: schema.ObjectCompletion, Model: "m",
				Choices: []schema.Choice{{Message: schema.Message{Role: "assistant", Content: "hi"}, FinishReason: "stop"}}}
			if err := broker.Reply(pub, "_INBOX.reply", codec, resp, "Llmq-Tier", "t1", "Llmq-Dangling"); err != nil {
				t.Fatal(err)
			}
			m := receive(t, sub)
			if got := m.Header.Get(schema.HeaderContentType); got != codec.ContentType() {
				t.Errorf("Content-Type = %q, want %q", got, codec.ContentType())
			}
			if got := m.Header.Get("Llmq-Tier"); got != "t1" {
				t.Errorf("Llmq-Tier = %q", got)
			}
			if _, ok := m.Header["Llmq-Dangling"]; ok {
				t.Error("a key without a value became a header")
			}
			if broker.IsError(m) {
				t.Error("success reply marked as an error")
			}
			if broker.CodecOf(m) != codec {
				t.Errorf("CodecOf = %v", broker.CodecOf(m))
			}
			got, err := schema.DecodeReply(broker.CodecOf(m), m.Data, broker.IsError(m))
			if err != nil || got.ID != "r1" || got.Text() != "hi" {
				t.Fatalf("DecodeReply = %+v, %v", got, err)
			}
		})
	}
}

func TestReplyRefusesUnencodableValue(t *testing.T) {
	t.Parallel()
	pub, _ := pair(t)
	if err := broker.Reply(pub, "x", schema.JSON, map[string]any{"c": make(chan int)}); err == nil {
		t.Fatal("Reply encoded a channel")
	}
}

func TestReplyErrorCarriesStatusHeadersAndBody(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			t.Parallel()
			pub, subc := pair(t)
			sub, err := subc.SubscribeSync("_INBOX.err")
			if err != nil {
				t.Fatal(err)
			}
			if err := subc.Flush(); err != nil {
				t.Fatal(err)
			}
			e := schema.NewError(schema.CodeRateLimited, "slow down\r\nplease").WithRetryAfter(2 * time.Second)
			e.ProviderStatus = 429
			if err := broker.ReplyError(pub, "_INBOX.err", codec, e, "Llmq-Tier", "t1"); err != nil {
				t.Fatal(err)
			}
			m := receive(t, sub)
			want := map[string]string{
				schema.HeaderContentType:  codec.ContentType(),
				schema.HeaderStatus:       "429",
				schema.HeaderErrorMessage: "slow down  please",
				schema.HeaderErrorCode:    "rate_limited",
				"Llmq-Tier":               "t1",
			}
			for k, v := range want {
				if got := m.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if !broker.IsError(m) {
				t.Fatal("IsError = false")
			}
			got := schema.DecodeError(broker.CodecOf(m), m.Data)
			if *got != *e {
				t.Fatalf("body = %+v, want %+v", got, e)
			}
			// The body keeps the message whole; only the header is made safe.
			if got.Message != "slow down\r\nplease" {
				t.Fatalf("body message = %q", got.Message)
			}
		})
	}
}

func TestErrorMsgBoundsTheMessageHeader(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			t.Parallel()
			long := strings.Repeat("line\n", 300)
			m := broker.ErrorMsg("subj", codec, schema.NewError(schema.CodeProviderError, long))
			if m.Subject != "subj" {
				t.Errorf("subject = %q", m.Subject)
			}
			h := m.Header.Get(schema.HeaderErrorMessage)
			if len(h) != 512 || strings.ContainsAny(h, "\r\n") {
				t.Fatalf("header of %d bytes %q, want 512 bytes on one line", len(h), h[:40])
			}
			if m.Header.Get(schema.HeaderStatus) != "502" || m.Header.Get(schema.HeaderErrorCode) != "provider_error" {
				t.Fatalf("headers = %v", m.Header)
			}
			if got := schema.DecodeError(codec, m.Data); got.Message != long {
				t.Fatal("body message was cut")
			}
		})
	}
}

func TestCodecOfAndIsErrorReadHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		h       nats.Header
		codec   schema.Codec
		isError bool
	}{
		{"no headers", nil, schema.MsgPack, false},
		{"empty headers", nats.Header{}, schema.MsgPack, false},
		{"JSON", nats.Header{"Content-Type": {"application/json; charset=utf-8"}}, schema.JSON, false},
		{"msgpack", nats.Header{"Content-Type": {"application/msgpack"}}, schema.MsgPack, false},
		{"lower-case header name is not read", nats.Header{"content-type": {"application/json"}}, schema.MsgPack, false},
		{"error status", nats.Header{"Nats-Service-Error-Code": {"404"}, "Content-Type": {"application/json"}}, schema.JSON, true},
		{"NATS no-responders status is not an llmq error", nats.Header{"Status": {"503"}}, schema.MsgPack, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := &nats.Msg{Header: tt.h}
			if got := broker.CodecOf(m); got != tt.codec {
				t.Errorf("CodecOf = %v, want %v", got, tt.codec)
			}
			if got := broker.IsError(m); got != tt.isError {
				t.Errorf("IsError = %v, want %v", got, tt.isError)
			}
		})
	}
}
