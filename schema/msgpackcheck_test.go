package schema

import (
	"bytes"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// wellFormed are values whose encodings cover every msgpack format family.
func wellFormed() map[string]any {
	return map[string]any{
		"nil":            nil,
		"bools":          []bool{true, false},
		"fixints":        []int64{0, 127, -1, -32},
		"ints":           []int64{128, -33, 255, -128, 1 << 15, -(1 << 15), 1 << 31, -(1 << 31), math.MaxInt64, math.MinInt64},
		"uints":          []uint64{200, 60000, 1 << 31, math.MaxUint64},
		"floats":         []any{float32(1.5), 2.25, math.NaN(), math.Inf(-1)},
		"fixstr":         strings.Repeat("a", 31),
		"str8":           strings.Repeat("b", 200),
		"str16":          strings.Repeat("c", 300),
		"str32":          strings.Repeat("d", 70000),
		"bin8":           bytes.Repeat([]byte{1}, 10),
		"bin16":          bytes.Repeat([]byte{2}, 300),
		"bin32":          bytes.Repeat([]byte{3}, 70000),
		"fixarray":       make([]int, 15),
		"array16":        make([]int, 16),
		"array32":        make([]int8, 70000),
		"empty array":    []int{},
		"fixmap":         map[string]int{"a": 1},
		"map16":          bigMap(16),
		"map32":          bigMap(70000),
		"empty map":      map[string]int{},
		"time (ext)":     time.Unix(1700000000, 5),
		"time (fixext4)": time.Unix(1700000000, 0),
		"nested":         []any{[]any{[]any{map[string]any{"x": []any{}}}}, "tail"},
		"request": &Request{Messages: []Message{{Role: RoleUser, Content: "hi"}}, Stop: StopList{"a"},
			Metadata: map[string]string{"k": "v"}, MaxTokens: new(int)},
	}
}

func bigMap(n int) map[int]bool {
	m := make(map[int]bool, n)
	for i := range n {
		m[i] = true
	}
	return m
}

func TestCheckMsgpackAcceptsEveryFormat(t *testing.T) {
	t.Parallel()
	for name, v := range wellFormed() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := msgpack.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkMsgpack(data); err != nil {
				t.Fatalf("checkMsgpack(%x...) = %v", data[:min(len(data), 16)], err)
			}
			// Trailing data is the decoder's business, not the check's.
			if err := checkMsgpack(append(data, 0xc0)); err != nil {
				t.Fatalf("with trailing byte: %v", err)
			}
		})
	}
}

func TestCheckMsgpackRefusesEveryTruncation(t *testing.T) {
	t.Parallel()
	for name, v := range wellFormed() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := msgpack.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			step := 1
			if len(data) > 2000 {
				step = len(data) / 500
			}
			for n := 0; n < len(data); n += step {
				if err := checkMsgpack(data[:n]); err == nil {
					t.Fatalf("checkMsgpack accepted a %d-byte prefix of %d bytes", n, len(data))
				}
			}
		})
	}
}

func TestCheckMsgpackRefusesHostileHeaders(t *testing.T) {
	t.Parallel()
	nested := func(depth int) []byte { return append(bytes.Repeat([]byte{0x91}, depth), 0xc0) }
	tests := []struct {
		name string
		data []byte
		want string // "" = accepted
	}{
		{"reserved code 0xc1", []byte{0xc1}, "invalid code 0xc1"},
		{"array32 claiming 2^32-1 values", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, "container of 4294967295 values"},
		{"array16 claiming more values than bytes", []byte{0xdc, 0x00, 0x03, 0xc0, 0xc0}, "container of 3 values"},
		{"map32 claiming 2^32-1 pairs", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a'}, "container of 8589934590 values"},
		{"str32 longer than the body", []byte{0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'}, "bytes needed"},
		{"bin32 longer than the body", []byte{0xc6, 0xff, 0xff, 0xff, 0xff}, "bytes needed"},
		{"ext32 longer than the body", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, "bytes needed"},
		{"struct with a huge messages array", []byte{0x81, 0xa8, 'm', 'e', 's', 's', 'a', 'g', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}, "container of 4294967295 values"},
		{"nesting at the limit", nested(maxMsgpackDepth - 1), ""},
		{"nesting over the limit", nested(maxMsgpackDepth + 1), "nested deeper than"},
		{"empty", nil, "bytes needed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkMsgpack(tt.data)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("checkMsgpack = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkMsgpack = %v, want %q", err, tt.want)
			}
		})
	}
}

// Not parallel: it measures the heap, so no other test may allocate
// meanwhile (parallel tests wait until the sequential ones are done).
func TestMsgpackUnmarshalRefusesHugeArrayWithoutAllocating(t *testing.T) {
	// 16M messages of 48 bytes: the decoder alone would allocate 800 MB.
	body := []byte{0x81, 0xa8, 'm', 'e', 's', 's', 'a', 'g', 'e', 's', 0xdd, 0x00, 0xff, 0xff, 0xff}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var r Request
	err := MsgPack.Unmarshal(body, &r)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("Unmarshal accepted a truncated huge array")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("Unmarshal allocated %d bytes for a %d-byte body", n, len(body))
	}
}
