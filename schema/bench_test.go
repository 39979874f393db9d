package schema_test

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/schema"
)

// plainRequest is the plain path's job: a system and a user message and a
// token limit, as most jobs are.
func plainRequest() *schema.Request {
	n := 256
	return &schema.Request{Model: "tier1", MaxTokens: &n, Messages: []schema.Message{
		{Role: schema.RoleSystem, Content: "You are a helpful assistant. Answer briefly."},
		{Role: schema.RoleUser, Content: "What is the capital of France? Explain in one sentence why it became the capital."},
	}}
}

func BenchmarkDecodeRequest(b *testing.B) {
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		data, err := codec.Marshal(plainRequest())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := schema.DecodeRequest(codec, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshalResponse(b *testing.B) {
	resp := benchResponse()
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Marshal(resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchResponse is the plain path's reply: one choice, usage and routing.
func benchResponse() *schema.Response {
	return &schema.Response{ID: "chatcmpl-1", Object: schema.ObjectCompletion, Created: 1700000000, Model: "m",
		Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: "Paris. It was the seat of the Capetian kings."}, FinishReason: schema.FinishStop}},
		Usage:   schema.Usage{PromptTokens: 30, CompletionTokens: 12, TotalTokens: 42},
		Routing: &schema.Routing{Tier: "tier1", Deployment: "d1", Worker: "w1", Provider: "openai", Model: "m", Attempts: 1, QueueMs: 0.25, CallMs: 812.5}}
}

// benchChunk is one token of a streamed reply, the commonest message of a
// stream.
func benchChunk() *schema.Chunk {
	return &schema.Chunk{ID: "chatcmpl-1", Object: schema.ObjectChunk, Created: 1700000000, Model: "m",
		Choices: []schema.ChunkChoice{{Delta: schema.Delta{Content: " Paris"}}}}
}

func BenchmarkMarshalRequest(b *testing.B) {
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		b.Run(codec.String(), func(b *testing.B) {
			req := plainRequest()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Marshal(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeReply(b *testing.B) {
	for _, codec := range []schema.Codec{schema.MsgPack, schema.JSON} {
		data, err := codec.Marshal(benchResponse())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := schema.DecodeReply(codec, data, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshalChunk(b *testing.B) {
	c := benchChunk()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schema.MsgPack.Marshal(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalChunk(b *testing.B) {
	data, err := schema.MsgPack.Marshal(benchChunk())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var c schema.Chunk
		if err := schema.MsgPack.Unmarshal(data, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// benchHeartbeat is a busy worker's beat: jobs from two dispatchers, tags,
// usage limits and a host's loaded models.
func benchHeartbeat() *schema.Heartbeat {
	return &schema.Heartbeat{Worker: "tier1-gpu-a-x1", Tier: "tier1", Deployment: "tier1-gpu-a", Provider: "ollama",
		Model: "qwen2.5:14b", Host: "http://10.0.0.7:11434", Subject: "llm.w.tier1-gpu-a-x1", State: schema.StateReady,
		Seq: 123456, IntervalMs: 1000, Capacity: 8, InFlight: 5, Weight: 2, LatencyMs: 812.5, MsPerToken: 21.25,
		Samples: 64, Completed: 98765, Failed: 12,
		Received:   map[string]uint64{"d-7f3a2c": 50123, "d-91be04": 48800},
		Jobs:       map[string][]uint64{"d-7f3a2c": {50120, 50122, 50123}, "d-91be04": {48798, 48800}},
		QueueAgeUs: map[string]int64{"d-7f3a2c": 1500, "d-91be04": 320},
		RPM:        600, TPM: 200000, RPMUsed: 212, TPMUsed: 61000, RateFreesMs: 1700000012345,
		Tags: []string{"gpu", "team-a"}, Loaded: []string{"qwen2.5:14b", "llama3.1:8b"}, LoadMs: 2350}
}

// BenchmarkHeartbeat: a worker encodes a beat up to every few
// milliseconds and every dispatcher and gateway decodes each one
// (schema.MsgPack.Unmarshal, in broker.Subjects.DecodeHeartbeat). The
// reflection sub-benchmarks code the same beat by reflection over the same
// struct tags, as llmq did before (encoding with msgpack.Marshal).
func BenchmarkHeartbeat(b *testing.B) {
	hb := benchHeartbeat()
	data, err := msgpack.Marshal(hb)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := schema.MsgPack.Marshal(hb); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/msgpack.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal(hb); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got schema.Heartbeat
			if err := schema.MsgPack.Unmarshal(data, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal((*reflHeartbeat)(hb)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got reflHeartbeat
			if err := schema.MsgPack.Unmarshal(data, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
