package schema

import (
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The hand-written decoders do not trust an array's claimed length even
// without checkMsgpack before them (msgpack.Unmarshal called directly):
// a few bytes claiming 4G elements fail at the missing bytes having
// allocated little. Not parallel: it reads the process's allocation
// counter.
func TestMsgpackDecoders_HugeClaimedLengthsDoNotAllocate(t *testing.T) {
	huge := []byte{0xdd, 0xff, 0xff, 0xff, 0xff} // array32 of 4G-1
	hugeKey := []byte{0xdb, 0xff, 0xff, 0xff, 0xff}
	hugeMap := []byte{0xdf, 0xff, 0xff, 0xff, 0xff} // map32 of 4G-1
	fixstr := func(s string) []byte { return append([]byte{0xa0 | byte(len(s))}, s...) }
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name string
		body []byte
		v    any
	}{
		{"request messages", cat([]byte{0x81}, fixstr("messages"), huge), new(Request)},
		{"request tools", cat([]byte{0x81}, fixstr("tools"), huge), new(Request)},
		{"message tool_calls", cat([]byte{0x81}, fixstr("messages"), []byte{0x91, 0x81}, fixstr("tool_calls"), huge), new(Request)},
		{"request key", cat([]byte{0x81}, hugeKey), new(Request)},
		{"response choices", cat([]byte{0x81}, fixstr("choices"), huge), new(Response)},
		{"logprobs content", cat([]byte{0x81}, fixstr("choices"), []byte{0x91, 0x81}, fixstr("logprobs"), []byte{0x81}, fixstr("content"), huge), new(Response)},
		{"chunk choices", cat([]byte{0x81}, fixstr("choices"), huge), new(Chunk)},
		{"delta tool_calls", cat([]byte{0x81}, fixstr("choices"), []byte{0x91, 0x81}, fixstr("delta"), []byte{0x81}, fixstr("tool_calls"), huge), new(Chunk)},
		{"heartbeat fields", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, new(Heartbeat)},
		{"heartbeat key", cat([]byte{0x81}, hugeKey), new(Heartbeat)},
		{"heartbeat received", cat([]byte{0x81}, fixstr("received"), hugeMap), new(Heartbeat)},
		{"heartbeat jobs", cat([]byte{0x81}, fixstr("jobs"), hugeMap), new(Heartbeat)},
		{"heartbeat job seqs", cat([]byte{0x81}, fixstr("jobs"), []byte{0x81}, fixstr("d"), huge), new(Heartbeat)},
		{"heartbeat queue ages", cat([]byte{0x81}, fixstr("queue_age_us"), hugeMap), new(Heartbeat)},
		// checkMsgpack does not look inside an ext, whose map the
		// decoder reads (as reflection did, allocating a map of 1M).
		{"heartbeat received in an ext", cat([]byte{0x81}, fixstr("received"), []byte{0xc7, 5, 1}, hugeMap), new(Heartbeat)},
		{"heartbeat tags", cat([]byte{0x81}, fixstr("tags"), huge), new(Heartbeat)},
		{"heartbeat loaded", cat([]byte{0x81}, fixstr("loaded"), huge), new(Heartbeat)},
	}
	for _, tt := range tests {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := msgpack.Unmarshal(tt.body, tt.v)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: decoded a truncated body", tt.name)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: allocated %d bytes for a %d-byte body", tt.name, n, len(tt.body))
		}
	}
}
