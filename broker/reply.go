package broker

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// Reply publishes v, encoded with codec, to subject. extra headers (pairs
// of key, value) are added.
func Reply(nc *nats.Conn, subject string, codec schema.Codec, v any, extra ...string) error {
	return ReplyVia(nil, nc, subject, codec, v, extra...)
}

// ReplyVia is Reply through in: a reply for a subject registered there
// (Inboxes.Register) is handed over in process instead of published. A
// reply over the connection's max payload is never handed over: it fails
// with nats.ErrMaxPayload as its publish would.
func ReplyVia(in *Inboxes, nc *nats.Conn, subject string, codec schema.Codec, v any, extra ...string) error {
	data, err := codec.Marshal(v)
	if err != nil {
		return err
	}
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{schema.HeaderContentType: {codec.ContentType()}}}
	for i := 0; i+1 < len(extra); i += 2 {
		m.Header[extra[i]] = []string{extra[i+1]}
	}
	return publishVia(in, nc, m)
}

// publishVia hands m over through in, or publishes it. What is handed
// over is a copy, so that nothing of m's leaks: the message and header a
// reply is built in then stay off the heap when it is published (3
// allocations per published reply otherwise).
func publishVia(in *Inboxes, nc *nats.Conn, m *nats.Msg) error {
	if max := nc.MaxPayload(); max > 0 && int64(len(m.Data)) > max {
		return nats.ErrMaxPayload
	}
	if in.lookup(m.Subject) != nil {
		h := make(nats.Header, len(m.Header))
		for k, v := range m.Header {
			h[k] = slices.Clone(v)
		}
		if in.Deliver(&nats.Msg{Subject: strings.Clone(m.Subject), Header: h, Data: bytes.Clone(m.Data)}) {
			return nil
		}
	}
	return nc.PublishMsg(m)
}

// ErrorMsg builds the reply message of a failed job: the {"error":{...}}
// body in codec and the status headers.
func ErrorMsg(subject string, codec schema.Codec, e *schema.Error) *nats.Msg {
	data, err := codec.Marshal(schema.ErrorBody{Error: e})
	if err != nil {
		data, _ = codec.Marshal(schema.ErrorBody{Error: schema.NewError(schema.CodeInternal, "error reply could not be encoded")})
	}
	return &nats.Msg{Subject: subject, Data: data, Header: nats.Header{
		schema.HeaderContentType:  {codec.ContentType()},
		schema.HeaderStatus:       {strconv.Itoa(e.Status)},
		schema.HeaderErrorMessage: {headerSafe(e.Message)},
		schema.HeaderErrorCode:    {e.Code},
	}}
}

// ReplyError publishes a typed error reply to subject. extra headers (pairs
// of key, value) are added.
func ReplyError(nc *nats.Conn, subject string, codec schema.Codec, e *schema.Error, extra ...string) error {
	return ReplyErrorVia(nil, nc, subject, codec, e, extra...)
}

// ReplyErrorVia is ReplyError through in (see ReplyVia).
func ReplyErrorVia(in *Inboxes, nc *nats.Conn, subject string, codec schema.Codec, e *schema.Error, extra ...string) error {
	m := ErrorMsg(subject, codec, e)
	for i := 0; i+1 < len(extra); i += 2 {
		m.Header[extra[i]] = []string{extra[i+1]}
	}
	return publishVia(in, nc, m)
}

// CodecOf returns the codec a message's Content-Type names.
func CodecOf(m *nats.Msg) schema.Codec {
	if m.Header == nil {
		return schema.MsgPack
	}
	return schema.CodecFor(m.Header.Get(schema.HeaderContentType))
}

// IsError reports whether a reply is an error reply.
func IsError(m *nats.Msg) bool {
	return m.Header != nil && m.Header.Get(schema.HeaderStatus) != ""
}

// headerSafe makes s fit in one header line of at most 512 bytes, cut
// between runes.
func headerSafe(s string) string {
	if len(s) > 512 {
		cut := 512
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}
