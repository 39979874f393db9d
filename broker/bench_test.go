package broker_test

import (
	"testing"
	"time"

	"github.com/llmq/llmq/broker"
)

// BenchmarkDecodeHeartbeat is what every dispatcher and gateway does with
// every beat of every worker: decode, check and clamp it. The beat is a
// busy worker's: jobs from two dispatchers, tags, usage limits and a
// host's loaded models.
func BenchmarkDecodeHeartbeat(b *testing.B) {
	s := broker.Subjects{Prefix: "llm"}
	hb := validBeat(s)
	hb.Host, hb.Weight, hb.LatencyMs, hb.MsPerToken, hb.Samples, hb.Completed, hb.Failed = "http://10.0.0.7:11434", 2, 812.5, 21.25, 64, 98765, 12
	hb.Received = map[string]uint64{"d-7f3a2c": 50123, "d-91be04": 48800}
	hb.Jobs = map[string][]uint64{"d-7f3a2c": {50120, 50122, 50123}, "d-91be04": {48798, 48800}}
	hb.QueueAgeUs = map[string]int64{"d-7f3a2c": 1500, "d-91be04": 320}
	hb.RPM, hb.TPM, hb.RPMUsed, hb.TPMUsed = 600, 200000, 212, 61000
	hb.Tags, hb.Loaded, hb.LoadMs = []string{"gpu", "team-a"}, []string{"qwen2.5:14b", "llama3.1:8b"}, 2350
	data := encodeBeat(b, hb)
	subject := s.Heartbeat(hb.Worker)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.DecodeHeartbeat(subject, data, now); err != nil {
			b.Fatal(err)
		}
	}
}
