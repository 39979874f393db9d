package schema

import "testing"

// The plain path's messages fit the buffer Codec.Marshal sizes for them,
// so that encoding one allocates the buffer once.
func TestMsgpackSize_CoversPlainMessages(t *testing.T) {
	t.Parallel()
	n, stop := 256, FinishStop
	for _, v := range []interface{ msgpackSize() int }{
		&Request{Model: "tier1", MaxTokens: &n, Messages: []Message{{Role: RoleSystem, Content: "Be brief."},
			{Role: RoleUser, Content: "What is the capital of France? Explain in one sentence why it became the capital."}}},
		&Request{Input: InputList{"embed me", "and me"}, Model: "text-embedding-3-small", EncodingFormat: EncodingFloat},
		&Response{ID: "chatcmpl-1", Object: ObjectCompletion, Created: 1700000000, Model: "gpt-4o-mini",
			Choices: []Choice{{Message: Message{Role: RoleAssistant, Content: "Paris. It was the seat of the Capetian kings."}, FinishReason: FinishStop}},
			Usage:   Usage{PromptTokens: 30, CompletionTokens: 12, TotalTokens: 42},
			Routing: &Routing{Tier: "tier1", Deployment: "d1", Worker: "w1", Provider: "openai", Model: "gpt-4o-mini", Dispatcher: "d-1",
				Attempts: 1, QueueMs: 0.25, CallMs: 812.5, TTFTMs: 90.5, CostUSD: 0.00012}},
		&Chunk{ID: "chatcmpl-1", Object: ObjectChunk, Created: 1700000000, Model: "m", Choices: []ChunkChoice{{Delta: Delta{Content: " Paris"}}}},
		&Chunk{ID: "chatcmpl-1", Object: ObjectChunk, Created: 1700000000, Model: "m", Choices: []ChunkChoice{{FinishReason: &stop}},
			Usage: &Usage{PromptTokens: 30, CompletionTokens: 12, TotalTokens: 42}, Routing: &Routing{Tier: "tier1", Deployment: "d1",
				Worker: "w1", Provider: "openai", Model: "m", Attempts: 1, QueueMs: 0.25, CallMs: 812.5, TTFTMs: 90.5}},
		&Heartbeat{Worker: "w1", Tier: "tier1", Deployment: "d1", Provider: "openai", Model: "m", Subject: "llm.w.w1",
			State: StateReady, Seq: 7, IntervalMs: 1000, Capacity: 4},
		&Heartbeat{Worker: "tier1-gpu-a-x1", Tier: "tier1", Deployment: "tier1-gpu-a", Provider: "ollama", Model: "qwen2.5:14b",
			Host: "http://10.0.0.7:11434", Subject: "llm.w.tier1-gpu-a-x1", State: StateReady, Seq: 123456, IntervalMs: 1000,
			Capacity: 8, InFlight: 5, Weight: 2, LatencyMs: 812.5, MsPerToken: 21.25, Samples: 64, Completed: 98765, Failed: 12,
			Received:   map[string]uint64{"d-7f3a2c": 50123, "d-91be04": 48800},
			Jobs:       map[string][]uint64{"d-7f3a2c": {50120, 50122, 50123}, "d-91be04": {48798, 48800}},
			QueueAgeUs: map[string]int64{"d-7f3a2c": 1500, "d-91be04": 320}, CoolingUntilMs: 1700000012345, CoolingReason: "rate_limited",
			RPM: 600, TPM: 200000, RPMUsed: 212, TPMUsed: 61000, RateFreesMs: 1700000012345, RateWindowMs: 30000,
			InputCostPerToken: 1e-6, OutputCostPerToken: 2e-6, Tags: []string{"gpu", "team-a"}, MaxInputTokens: 128000,
			Mode: ModeEmbedding, Cold: true, Loaded: []string{"qwen2.5:14b", "llama3.1:8b"}, LoadMs: 2350, HostSlots: 16, HostInFlight: 9},
	} {
		data, err := MsgPack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.msgpackSize(); got < len(data) {
			t.Errorf("%T: size hint %d, encoded %d bytes", v, got, len(data))
		}
		if cap(data) > 2*len(data)+256 {
			t.Errorf("%T: buffer of %d bytes for %d", v, cap(data), len(data))
		}
	}
}
