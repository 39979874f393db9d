package broker_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// validBeat is a heartbeat as a worker sends it, for subjects s.
func validBeat(s broker.Subjects) schema.Heartbeat {
	return schema.Heartbeat{
		Worker: "tier1-gpu-a-x1", Tier: "tier1", Deployment: "tier1-gpu-a", Provider: "ollama", Model: "qwen",
		Subject: s.Worker("tier1-gpu-a-x1"), State: schema.StateReady, Seq: 7, IntervalMs: 1000, Capacity: 4, InFlight: 1,
		Received: map[string]uint64{"d-1": 3}, Jobs: map[string][]uint64{"d-1": {3}},
	}
}

func encodeBeat(t testing.TB, hb schema.Heartbeat) []byte {
	t.Helper()
	data, err := msgpack.Marshal(&hb)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDecodeHeartbeat_AcceptsAWorkersBeat(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "p"}
	want := validBeat(s)
	got, err := s.DecodeHeartbeat(s.Heartbeat(want.Worker), encodeBeat(t, want), time.Now())
	if err != nil {
		t.Fatalf("DecodeHeartbeat: %v", err)
	}
	if got.Worker != want.Worker || got.Capacity != 4 || got.InFlight != 1 || got.Seq != 7 || got.Jobs["d-1"][0] != 3 {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
}

func TestDecodeHeartbeat_RefusesBeatsThatNameOtherSubjects(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "p"}
	tests := []struct {
		name    string
		subject string // received on; default the worker's own
		edit    func(*schema.Heartbeat)
	}{
		{"job subject elsewhere", "", func(hb *schema.Heartbeat) { hb.Subject = "evil.sink.1" }},
		{"job subject a jobs subject", "", func(hb *schema.Heartbeat) { hb.Subject = s.Jobs("tier2") }},
		{"job subject another worker's", "", func(hb *schema.Heartbeat) { hb.Subject = s.Worker("other") }},
		{"beat on another worker's subject", s.Heartbeat("other"), nil},
		{"worker id with a dot", "", func(hb *schema.Heartbeat) { hb.Worker = "a.b" }},
		{"empty worker", "", func(hb *schema.Heartbeat) { hb.Worker = "" }},
		{"long worker id", "", func(hb *schema.Heartbeat) { hb.Worker = strings.Repeat("w", broker.MaxWorkerIDLen+1) }},
		{"wildcard tier", "", func(hb *schema.Heartbeat) { hb.Tier = "tier.>" }},
		{"long tier", "", func(hb *schema.Heartbeat) { hb.Tier = strings.Repeat("t", broker.MaxTierLen+1) }},
		{"unknown state", "", func(hb *schema.Heartbeat) { hb.State = "zombie" }},
		{"no capacity", "", func(hb *schema.Heartbeat) { hb.Capacity = 0 }},
		{"long model", "", func(hb *schema.Heartbeat) { hb.Model = strings.Repeat("m", broker.MaxNameLen+1) }},
		{"too many jobs", "", func(hb *schema.Heartbeat) { hb.Jobs = map[string][]uint64{"d": make([]uint64, broker.MaxBeatJobs+1)} }},
		{"too many queue ages", "", func(hb *schema.Heartbeat) {
			hb.QueueAgeUs = map[string]int64{}
			for i := range broker.MaxBeatDispatchers + 1 {
				hb.QueueAgeUs[fmt.Sprintf("d-%d", i)] = 1
			}
		}},
		{"long dispatcher id in queue_age_us", "", func(hb *schema.Heartbeat) {
			hb.QueueAgeUs = map[string]int64{strings.Repeat("d", broker.MaxWorkerIDLen+1): 1}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hb := validBeat(s)
			if tt.edit != nil {
				tt.edit(&hb)
			}
			if hb.Subject == s.Worker("tier1-gpu-a-x1") && hb.Worker != "tier1-gpu-a-x1" {
				hb.Subject = s.Worker(hb.Worker)
			}
			subject := tt.subject
			if subject == "" {
				subject = s.Heartbeat(hb.Worker)
			}
			_, err := s.DecodeHeartbeat(subject, encodeBeat(t, hb), time.Now())
			if !errors.Is(err, broker.ErrBadHeartbeat) {
				t.Fatalf("DecodeHeartbeat = %v, want ErrBadHeartbeat", err)
			}
		})
	}
}

func TestDecodeHeartbeat_ClampsNumbers(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "p"}
	now := time.Now()
	hb := validBeat(s)
	hb.Capacity = 1 << 30
	hb.InFlight = -5
	hb.IntervalMs = 1 << 40
	hb.Weight = math.Inf(1)
	hb.LatencyMs = math.NaN()
	hb.MsPerToken = -1
	hb.Order = -3
	hb.CoolingUntilMs = 1 << 62
	got, err := s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Capacity != broker.MaxCapacity || got.InFlight != 0 || got.IntervalMs != broker.MaxBeatInterval.Milliseconds() ||
		got.Weight != 1e9 || got.LatencyMs != 0 || got.MsPerToken != 0 || got.Order != 0 {
		t.Fatalf("not clamped: %+v", got)
	}
	if limit := now.Add(broker.MaxCooling).UnixMilli(); got.CoolingUntilMs != limit {
		t.Fatalf("cooling_until_ms = %d, want clamped to %d", got.CoolingUntilMs, limit)
	}
	hb.IntervalMs = 0
	if got, _ = s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), now); got.IntervalMs != broker.MinBeatInterval.Milliseconds() {
		t.Fatalf("interval 0 became %d ms, want %d", got.IntervalMs, broker.MinBeatInterval.Milliseconds())
	}
}

// TestDecodeHeartbeat_ClampsQueueAges: the dispatchers' queue ages a beat
// relays steer how dispatchers share the worker's free slots; none may be
// negative or without bound.
func TestDecodeHeartbeat_ClampsQueueAges(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "p"}
	hb := validBeat(s)
	hb.QueueAgeUs = map[string]int64{"d-1": -3, "d-2": math.MaxInt64, "d-3": 7000}
	got, err := s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.QueueAgeUs["d-1"] != 0 || got.QueueAgeUs["d-2"] != broker.MaxQueueAge.Microseconds() || got.QueueAgeUs["d-3"] != 7000 {
		t.Fatalf("queue_age_us not clamped: %v", got.QueueAgeUs)
	}
}

// TestDecodeHeartbeat_ClampsUsage: the usage limits, usage, window and
// prices a beat reports steer usage- and cost-based routing; none may be
// negative, NaN or without bound.
func TestDecodeHeartbeat_ClampsUsage(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "p"}
	now := time.Now()
	hb := validBeat(s)
	hb.RPM, hb.TPM, hb.RPMUsed, hb.TPMUsed = -1, math.MaxInt64, -7, 1<<62
	hb.RateWindowMs = 1 << 50
	hb.RateFreesMs = 1 << 62
	hb.InputCostPerToken, hb.OutputCostPerToken = math.NaN(), math.Inf(1)
	got, err := s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), now)
	if err != nil {
		t.Fatal(err)
	}
	if got.RPM != 0 || got.TPM != broker.MaxRate || got.RPMUsed != 0 || got.TPMUsed != broker.MaxRate {
		t.Fatalf("limits and usage not clamped: rpm %d tpm %d used %d/%d", got.RPM, got.TPM, got.RPMUsed, got.TPMUsed)
	}
	if got.RateWindowMs != broker.MaxRateWindow.Milliseconds() || got.RateFreesMs != now.Add(broker.MaxRateWindow).UnixMilli() {
		t.Fatalf("window not clamped: %d ms, frees %d", got.RateWindowMs, got.RateFreesMs)
	}
	if got.InputCostPerToken != 0 || got.OutputCostPerToken != broker.MaxCostPerToken {
		t.Fatalf("prices not clamped: %v %v", got.InputCostPerToken, got.OutputCostPerToken)
	}
	hb.RateFreesMs, hb.RateWindowMs = -5, -5
	if got, _ = s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), now); got.RateFreesMs != 0 || got.RateWindowMs != 0 {
		t.Fatalf("negative window figures became %d, %d", got.RateFreesMs, got.RateWindowMs)
	}
}

func TestDecodeHeartbeat_ClampsTagsAndWindow(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "p"}
	hb := validBeat(s)
	hb.Tags = []string{"free", "", strings.Repeat("x", broker.MaxTagLen+1), "free", "paid"}
	for i := range 2 * broker.MaxBeatTags {
		hb.Tags = append(hb.Tags, "t"+strings.Repeat("a", i%8)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	hb.MaxInputTokens = 1 << 40
	got, err := s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tags) != broker.MaxBeatTags || got.Tags[0] != "free" || got.Tags[1] != "paid" || got.MaxInputTokens != broker.MaxInputTokens {
		t.Fatalf("tags %q (%d), max_input_tokens %d: not clamped", got.Tags, len(got.Tags), got.MaxInputTokens)
	}
	for _, tag := range got.Tags {
		if tag == "" || len(tag) > broker.MaxTagLen {
			t.Fatalf("kept tag %q", tag)
		}
	}
	hb.Tags, hb.MaxInputTokens = []string{"a", "b"}, -1
	if got, _ = s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), time.Now()); len(got.Tags) != 2 || got.MaxInputTokens != 0 {
		t.Fatalf("tags %q, max_input_tokens %d", got.Tags, got.MaxInputTokens)
	}
}

func TestDecodeHeartbeat_ClampsResidency(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "p"}
	hb := validBeat(s)
	hb.Cold = true
	hb.Loaded = []string{"coder:14b", "", strings.Repeat("m", broker.MaxLoadedNameLen+1), "coder:14b"}
	for i := range 3 * broker.MaxBeatLoaded {
		hb.Loaded = append(hb.Loaded, fmt.Sprintf("m%d:latest", i))
	}
	hb.LoadMs, hb.HostSlots, hb.HostInFlight = math.Inf(1), 1<<30, 1<<30
	got, err := s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Cold || len(got.Loaded) != broker.MaxBeatLoaded || got.Loaded[0] != "coder:14b" || got.Loaded[1] != "m0:latest" {
		t.Fatalf("cold %v, loaded %d names starting %q: not clamped", got.Cold, len(got.Loaded), got.Loaded[:2])
	}
	for _, m := range got.Loaded {
		if m == "" || len(m) > broker.MaxLoadedNameLen {
			t.Fatalf("kept name %q", m)
		}
	}
	if got.LoadMs != broker.MaxLoadMs || got.HostSlots != broker.MaxCapacity || got.HostInFlight != 2*broker.MaxCapacity {
		t.Fatalf("load_ms %v, host slots %d, host in flight %d: not clamped", got.LoadMs, got.HostSlots, got.HostInFlight)
	}
	hb.Loaded, hb.LoadMs, hb.HostSlots, hb.HostInFlight = nil, math.NaN(), -1, 5
	got, _ = s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), time.Now())
	if got.Loaded != nil || got.LoadMs != 0 || got.HostSlots != 0 || got.HostInFlight != 0 {
		t.Fatalf("loaded %v, load_ms %v, host %d/%d", got.Loaded, got.LoadMs, got.HostInFlight, got.HostSlots)
	}
}

// TestDecodeHeartbeat_HostileLengthsDoNotAllocate is finding 3 of issue
// 10: a 59-byte beat whose array claims 2^32 elements made every reader
// die of "out of memory" (msgpack allocates the claimed length up front).
//
// Not parallel: it measures the process's allocations.
func TestDecodeHeartbeat_HostileLengthsDoNotAllocate(t *testing.T) {
	s := broker.Subjects{Prefix: "p"}
	// {"jobs": {"d": array32 of 2^32-1 elements}}
	data := []byte{0x81, 0xa4, 'j', 'o', 'b', 's', 0x81, 0xa1, 'd', 0xdd}
	data = binary.BigEndian.AppendUint32(data, math.MaxUint32)
	data = append(data, make([]byte, 40)...)
	var before, after runtimeMem
	before.read()
	_, err := s.DecodeHeartbeat(s.Heartbeat("w"), data, time.Now())
	after.read()
	if !errors.Is(err, broker.ErrBadHeartbeat) {
		t.Fatalf("DecodeHeartbeat = %v, want ErrBadHeartbeat", err)
	}
	if grew := after.total - before.total; grew > 64<<20 {
		t.Fatalf("decoding a %d-byte beat allocated %d bytes", len(data), grew)
	}
}

func TestCheckReply(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "llm"}
	ok := []string{"_INBOX.abc.def", "_INBOX.alice.x1.y2", "reply-1"}
	bad := []string{"", strings.Repeat("a", broker.MaxReplyLen+1), "$JS.API.STREAM.DELETE.x", "$SYS.REQ.SERVER.PING",
		"llm.w.worker1", "llm.hb.w", "llm.jobs.tier1", "a.*.b", "a.>", "a..b", ".a", "a.", "a b", "a\r\nPUB x 1"}
	for _, r := range ok {
		if err := s.CheckReply(r); err != nil {
			t.Errorf("CheckReply(%q) = %v, want nil", r, err)
		}
	}
	for _, r := range bad {
		if err := s.CheckReply(r); err == nil {
			t.Errorf("CheckReply(%.40q) = nil, want an error", r)
		}
	}
}

// FuzzDecodeHeartbeat: DecodeHeartbeat never panics, and what it accepts
// is within its bounds.
func FuzzDecodeHeartbeat(f *testing.F) {
	s := broker.Subjects{Prefix: "p"}
	f.Add(encodeBeat(f, validBeat(s)))
	hb := validBeat(s)
	hb.Capacity, hb.CoolingUntilMs, hb.Seq = 1<<30, 1<<62, 1<<62
	f.Add(encodeBeat(f, hb))
	f.Add([]byte{0x81, 0xa4, 'j', 'o', 'b', 's', 0x81, 0xa1, 'd', 0xdd, 0xff, 0xff, 0xff, 0xff})
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		var probe struct {
			Worker string `msgpack:"worker"`
		}
		_ = schema.MsgPack.Unmarshal(data, &probe) // only to name the subject
		got, err := s.DecodeHeartbeat(s.Heartbeat(probe.Worker), data, now)
		if err != nil {
			if !errors.Is(err, broker.ErrBadHeartbeat) {
				t.Fatalf("error %v does not wrap ErrBadHeartbeat", err)
			}
			return
		}
		if got.Capacity < 1 || got.Capacity > broker.MaxCapacity || got.InFlight < 0 || got.InFlight > 2*got.Capacity ||
			got.IntervalMs < broker.MinBeatInterval.Milliseconds() || got.IntervalMs > broker.MaxBeatInterval.Milliseconds() ||
			got.CoolingUntilMs > now.Add(broker.MaxCooling).UnixMilli() || got.Subject != s.Worker(got.Worker) || !broker.ValidTier(got.Tier) ||
			len(got.Tags) > broker.MaxBeatTags || got.MaxInputTokens < 0 || got.MaxInputTokens > broker.MaxInputTokens ||
			len(got.Loaded) > broker.MaxBeatLoaded || got.LoadMs < 0 || got.LoadMs > broker.MaxLoadMs ||
			got.HostSlots < 0 || got.HostSlots > broker.MaxCapacity || got.HostInFlight < 0 || got.HostInFlight > 2*got.HostSlots {
			t.Fatalf("accepted out of bounds: %+v", got)
		}
	})
}

func TestDecodeHeartbeat_KeepsEmbeddingModeAndClearsUnknownModes(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "p"}
	for mode, want := range map[string]string{"embedding": "embedding", "": "", "rerank": "", strings.Repeat("x", 1000): ""} {
		hb := validBeat(s)
		hb.Mode = mode
		got, err := s.DecodeHeartbeat(s.Heartbeat(hb.Worker), encodeBeat(t, hb), time.Now())
		if err != nil {
			t.Fatalf("mode %.20q: %v", mode, err)
		}
		if got.Mode != want {
			t.Errorf("mode %.20q decoded as %q, want %q", mode, got.Mode, want)
		}
	}
}
