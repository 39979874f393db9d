package schema_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/schema"
)

// reflHeartbeat is Heartbeat without its methods: msgpack codes it by
// reflection from the same struct tags, as llmq did before its codec was
// written by hand.
type reflHeartbeat schema.Heartbeat

var genUints = []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, math.MaxUint64}

func (g gen) uint64() uint64 { return genUints[g.r.IntN(len(genUints))] }

// dispatchers returns the keys of a beat's per-dispatcher maps: nil, none,
// one (whose bytes are deterministic) or several.
func (g gen) dispatchers() []string {
	switch g.r.IntN(5) {
	case 0:
		return nil
	case 1:
		return []string{}
	case 2:
		return []string{g.str()}
	}
	out := make([]string, 2+g.r.IntN(4))
	for i := range out {
		out[i] = fmt.Sprintf("d-%d-%s", i, g.str())
	}
	return out
}

func (g gen) received() map[string]uint64 {
	ids := g.dispatchers()
	if ids == nil {
		return nil
	}
	m := make(map[string]uint64, len(ids))
	for _, id := range ids {
		m[id] = g.uint64()
	}
	return m
}

func (g gen) jobs() map[string][]uint64 {
	ids := g.dispatchers()
	if ids == nil {
		return nil
	}
	m := make(map[string][]uint64, len(ids))
	for _, id := range ids {
		switch g.r.IntN(4) {
		case 0:
			m[id] = nil
		case 1:
			m[id] = []uint64{}
		default:
			seqs := make([]uint64, 1+g.r.IntN(5))
			for i := range seqs {
				seqs[i] = g.uint64()
			}
			m[id] = seqs
		}
	}
	return m
}

func (g gen) queueAges() map[string]int64 {
	ids := g.dispatchers()
	if ids == nil {
		return nil
	}
	m := make(map[string]int64, len(ids))
	for _, id := range ids {
		m[id] = int64(g.int())
	}
	return m
}

func (g gen) heartbeat() *schema.Heartbeat {
	h := &schema.Heartbeat{Worker: g.str(), Tier: g.str(), Deployment: g.str(), Provider: g.str(), Model: g.str(),
		Subject: g.str(), Seq: g.uint64(), IntervalMs: int64(g.int()), Capacity: g.int(), InFlight: g.int(),
		LatencyMs: g.float(), MsPerToken: g.float(), Samples: g.int(), Completed: g.uint64(), Failed: g.uint64(),
		Received: g.received(), Jobs: g.jobs(), QueueAgeUs: g.queueAges(), Tags: g.strings(4), Loaded: g.strings(4)}
	h.State = []string{schema.StateReady, schema.StateDraining, schema.StateStopped, "", g.str()}[g.r.IntN(5)]
	if g.coin() {
		h.Host = g.str()
	}
	if g.coin() {
		h.Weight = g.float()
	}
	if g.coin() {
		h.Order = g.int()
	}
	if g.coin() {
		h.CoolingUntilMs = int64(g.int())
	}
	if g.coin() {
		h.CoolingReason = g.str()
	}
	if g.coin() {
		h.RPM, h.TPM = int64(g.int()), int64(g.int())
	}
	if g.coin() {
		h.RPMUsed, h.TPMUsed = int64(g.int()), int64(g.int())
	}
	if g.coin() {
		h.RateFreesMs, h.RateWindowMs = int64(g.int()), int64(g.int())
	}
	if g.coin() {
		h.InputCostPerToken, h.OutputCostPerToken = g.float(), g.float()
	}
	if g.coin() {
		h.MaxInputTokens = g.int()
	}
	if g.coin() {
		h.Mode = []string{schema.ModeEmbedding, g.str()}[g.r.IntN(2)]
	}
	if g.coin() {
		h.Cold = g.coin()
	}
	if g.coin() {
		h.LoadMs = g.float()
	}
	if g.coin() {
		h.HostSlots, h.HostInFlight = g.int(), g.int()
	}
	return h
}

func TestMsgpack_Heartbeat_SameBytesAndValuesAsReflection(t *testing.T) {
	t.Parallel()
	cases := []*schema.Heartbeat{{}, benchHeartbeat(),
		{Received: map[string]uint64{}, Jobs: map[string][]uint64{"": nil}, QueueAgeUs: map[string]int64{"d": 0}, Tags: []string{}, Loaded: []string{""}},
		{Jobs: map[string][]uint64{"d": {}}, Weight: math.Copysign(0, -1), Cold: true}}
	g := gen{rand.New(rand.NewPCG(14, 7))}
	// Large: strings of str32, arrays and maps of 16-bit lengths.
	big := g.heartbeat()
	big.Model, big.Jobs, big.Received = strings.Repeat("m", 70000), map[string][]uint64{"d": make([]uint64, 300)}, map[string]uint64{}
	for i := range 20 {
		big.Received[strings.Repeat("k", i)] = uint64(i) << (3 * i)
	}
	cases = append(cases, big)
	for range 1500 {
		cases = append(cases, g.heartbeat())
	}
	for i, c := range cases {
		checkCompat(t, i, c, func(h *schema.Heartbeat) *reflHeartbeat { return (*reflHeartbeat)(h) },
			func(p *reflHeartbeat) *schema.Heartbeat { return (*schema.Heartbeat)(p) })
	}
}

// Workers publish beats with msgpack.Marshal(&hb) and receivers read them
// with schema.MsgPack.Unmarshal: both take the hand-written codec (which,
// unlike reflection, refuses a beat sent as an array), and a beat with one
// dispatcher (whose bytes do not depend on map order) is the bytes
// reflection wrote.
func TestMsgpack_Heartbeat_WorkersAndReceiversTakeTheHandWrittenCodec(t *testing.T) {
	t.Parallel()
	hb := benchHeartbeat()
	if _, ok := any(hb).(msgpack.CustomEncoder); !ok {
		t.Fatal("*Heartbeat is no msgpack.CustomEncoder")
	}
	if _, ok := any(*hb).(msgpack.CustomEncoder); !ok {
		t.Fatal("Heartbeat is no msgpack.CustomEncoder")
	}
	if _, ok := any(hb).(msgpack.CustomDecoder); !ok {
		t.Fatal("*Heartbeat is no msgpack.CustomDecoder")
	}
	asArray, err := msgpack.Marshal([]any{"w"})
	if err != nil {
		t.Fatal(err)
	}
	var got schema.Heartbeat
	if err := schema.MsgPack.Unmarshal(asArray, &got); err == nil || !strings.Contains(err.Error(), "got an array, want a map") {
		t.Fatalf("a beat as an array: %v, want the hand-written decoder's refusal", err)
	}
	hb.Received, hb.Jobs, hb.QueueAgeUs = map[string]uint64{"d-1": 3}, map[string][]uint64{"d-1": {2, 3}}, map[string]int64{"d-1": 40}
	data, err := msgpack.Marshal(hb)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := msgpack.Marshal((*reflHeartbeat)(hb))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, plain) {
		t.Fatalf("bytes differ\nhand:  %x\nplain: %x", data, plain)
	}
	// A beat with a key sent twice: reflection added the second map's
	// entries to the first's and kept tags for a nil; so does the codec.
	dup, err := msgpack.Marshal(map[string]any{"received": map[string]any{"a": 1}})
	if err != nil {
		t.Fatal(err)
	}
	twice := append([]byte{0x84}, dup[1:]...)
	for _, kv := range []map[string]any{{"received": map[string]any{"b": 2}}, {"tags": []string{"x"}}, {"tags": nil}} {
		more, err := msgpack.Marshal(kv)
		if err != nil {
			t.Fatal(err)
		}
		twice = append(twice, more[1:]...)
	}
	if err := schema.MsgPack.Unmarshal(twice, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Received) != 2 || got.Received["a"] != 1 || got.Received["b"] != 2 || len(got.Tags) != 1 {
		t.Fatalf("decoded %+v", got)
	}
	checkSameDecode(t, "heartbeat", twice, func(p *reflHeartbeat) *schema.Heartbeat { return (*schema.Heartbeat)(p) })
}

// A heartbeat's errors name the field, as a request's do.
func TestMsgpack_Heartbeat_ErrorsNameTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"capacity": "4"}, "capacity: "},
		{map[string]any{"seq": -1.5}, "seq: "},
		{map[string]any{"received": []any{1}}, "received: "},
		{map[string]any{"jobs": map[string]any{"d": "x"}}, "jobs: "},
		{map[string]any{"queue_age_us": map[string]any{"d": true}}, "queue_age_us: "},
		{map[string]any{"tags": "a"}, "tags: "},
		{map[string]any{"rate_window_ms": "1m"}, "rate_window_ms: "},
	}
	for _, tt := range tests {
		data, err := msgpack.Marshal(tt.body)
		if err != nil {
			t.Fatal(err)
		}
		var hb schema.Heartbeat
		err = schema.MsgPack.Unmarshal(data, &hb)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want it to start with %q", tt.body, err, tt.want)
		}
	}
}
