package provider

import (
	"io"

	"github.com/llmq/llmq/schema"
)

// Caps on what an adapter reads from a provider, so that a broken or
// hostile upstream cannot grow a worker's memory without bound.
const (
	// MaxReplyBytes bounds the body of a non-streamed reply.
	MaxReplyBytes = 32 << 20
	// MaxStreamBytes bounds all the bytes of one streamed reply. It is
	// twice MaxReplyBytes because a stream spends most of its bytes on
	// framing (each token comes in an event of 100–250 bytes): the content
	// it can carry is well within what a non-streamed reply may hold.
	MaxStreamBytes = 64 << 20
)

// TooLarge is the error of a reply over limit bytes: payload_too_large,
// which is not retried (another attempt would download it again), and
// does not count toward a cooldown.
func TooLarge(what string, limit int64) *schema.Error {
	return schema.Errorf(schema.CodePayloadTooLarge, "%s over %d bytes: llmq reads no more of a provider's answer", what, limit)
}

// LimitReader returns a reader of r that fails, once more than limit bytes
// have come, with TooLarge(what, limit) — unlike io.LimitReader, whose
// silent end would make an over-long reply look cut off (a connection
// error, retried). The error is returned as is, so adapters that pass read
// errors to TransportError keep its code.
func LimitReader(r io.Reader, limit int64, what string) io.Reader {
	return &limitReader{r: r, left: limit, limit: limit, what: what}
}

type limitReader struct {
	r     io.Reader
	left  int64 // bytes still allowed; -1 once over
	limit int64
	what  string
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, TooLarge(l.what, l.limit)
	}
	// Read one byte past the limit, to tell a body of exactly limit bytes
	// from a longer one.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n - 1, TooLarge(l.what, l.limit)
	}
	return n, err
}
