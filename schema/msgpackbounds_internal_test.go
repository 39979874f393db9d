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
