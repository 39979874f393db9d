package schema_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/schema"
)

func TestCodecForContentTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		contentType string
		want        schema.Codec
	}{
		{"", schema.MsgPack},
		{"application/msgpack", schema.MsgPack},
		{"application/json", schema.JSON},
		{"application/json; charset=utf-8", schema.JSON},
		{"application/json;charset=UTF-8", schema.JSON},
		{"Application/JSON", schema.MsgPack}, // documented: the match is case-sensitive
		{"text/plain", schema.MsgPack},
		{"application/jso", schema.MsgPack},
		{" application/json", schema.MsgPack},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			t.Parallel()
			if got := schema.CodecFor(tt.contentType); got != tt.want {
				t.Fatalf("CodecFor(%q) = %v, want %v", tt.contentType, got, tt.want)
			}
		})
	}
}

func TestCodecNamesAndContentTypesRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		codec    schema.Codec
		ct, name string
	}{
		{schema.MsgPack, "application/msgpack", "msgpack"},
		{schema.JSON, "application/json", "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.codec.ContentType(); got != tt.ct {
				t.Errorf("ContentType() = %q, want %q", got, tt.ct)
			}
			if got := tt.codec.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := schema.CodecFor(tt.codec.ContentType()); got != tt.codec {
				t.Errorf("CodecFor(ContentType()) = %v, want %v", got, tt.codec)
			}
		})
	}
	var zero schema.Codec
	if zero != schema.MsgPack {
		t.Errorf("zero Codec = %v, want msgpack (the default)", zero)
	}
}

func sampleRouting() *schema.Routing {
	return &schema.Routing{
		Tier: "tier1", Deployment: "dep-a", Worker: "dep-a-xyz", Provider: "sim", Model: "small",
		Dispatcher: "d-1", Attempts: 2, QueueMs: 1.5, CallMs: 66.04, TTFTMs: 12.25,
	}
}

func sampleResponse() *schema.Response {
	return &schema.Response{
		ID: "chatcmpl-1", Object: schema.ObjectCompletion, Created: 1795637098, Model: "small",
		Choices: []schema.Choice{{Index: 0, Message: schema.Message{Role: schema.RoleAssistant, Content: "hello"}, FinishReason: schema.FinishLength}},
		Usage:   schema.Usage{PromptTokens: 5, CompletionTokens: 6, TotalTokens: 11},
		Routing: sampleRouting(),
	}
}

func sampleChunk(last bool) *schema.Chunk {
	c := &schema.Chunk{ID: "chatcmpl-2", Object: schema.ObjectChunk, Created: 1795637099, Model: "small",
		Choices: []schema.ChunkChoice{{Index: 0, Delta: schema.Delta{Role: schema.RoleAssistant, Content: "hel"}}}}
	if last {
		f := schema.FinishStop
		c.Choices = []schema.ChunkChoice{{FinishReason: &f}}
		c.Usage = &schema.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}
		c.Routing = sampleRouting()
	}
	return c
}

func sampleHeartbeat() *schema.Heartbeat {
	return &schema.Heartbeat{
		Worker: "w1", Tier: "tier1", Deployment: "dep-a", Provider: "ollama", Model: "qwen", Host: "http://gpu:11434",
		Subject: "llm.w.w1", State: schema.StateReady, Seq: 42, IntervalMs: 1000, Capacity: 4, InFlight: 1,
		Weight: 2.5, Order: 1, LatencyMs: 120.5, MsPerToken: 8.25, Samples: 9, Completed: 100, Failed: 3,
		Received: map[string]uint64{"d-1": 7},
	}
}

func sampleErrorBody() *schema.ErrorBody {
	e := schema.NewError(schema.CodeRateLimited, "slow down").WithRetryAfter(1500 * 1e6)
	e.ProviderStatus = 429
	return &schema.ErrorBody{Error: e}
}

func TestCodecsRoundTripWireTypes(t *testing.T) {
	t.Parallel()
	values := []struct {
		name string
		v    any
		zero func() any
	}{
		{"response", sampleResponse(), func() any { return new(schema.Response) }},
		{"response without routing", func() any { r := sampleResponse(); r.Routing = nil; return r }(), func() any { return new(schema.Response) }},
		{"chunk", sampleChunk(false), func() any { return new(schema.Chunk) }},
		{"last chunk", sampleChunk(true), func() any { return new(schema.Chunk) }},
		{"heartbeat", sampleHeartbeat(), func() any { return new(schema.Heartbeat) }},
		{"error body", sampleErrorBody(), func() any { return new(schema.ErrorBody) }},
	}
	for _, codec := range []schema.Codec{schema.JSON, schema.MsgPack} {
		for _, tt := range values {
			t.Run(codec.String()+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				data, err := codec.Marshal(tt.v)
				if err != nil {
					t.Fatal(err)
				}
				got := tt.zero()
				if err := codec.Unmarshal(data, got); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.v) {
					t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.v)
				}
			})
		}
	}
}

// generic decodes data as a map, the way a producer in another language
// sees it.
func generic(t *testing.T, codec schema.Codec, v any) map[string]any {
	t.Helper()
	data, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if codec == schema.JSON {
		err = json.Unmarshal(data, &m)
	} else {
		err = msgpack.Unmarshal(data, &m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// lookup follows a path like "choices.0.message.content".
func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, key := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[key]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			if key != "0" || len(c) == 0 {
				return nil, false
			}
			cur = c[0]
		default:
			return nil, false
		}
	}
	return cur, true
}

func TestWireFieldNamesMatchTheProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		v       any
		present []string
		absent  []string
	}{
		{"response", sampleResponse(), []string{
			"id", "object", "created", "model", "choices.0.index", "choices.0.message.role", "choices.0.message.content",
			"choices.0.finish_reason", "usage.prompt_tokens", "usage.completion_tokens", "usage.total_tokens",
			"routing.tier", "routing.deployment", "routing.worker", "routing.provider", "routing.model", "routing.dispatcher",
			"routing.attempts", "routing.queue_ms", "routing.call_ms", "routing.ttft_ms",
		}, []string{"choices.0.message.name"}},
		{"response with zero timings keeps queue_ms and call_ms", func() any {
			r := sampleResponse()
			r.Routing = &schema.Routing{Tier: "t"}
			return r
		}(), []string{"routing.queue_ms", "routing.call_ms", "routing.attempts"}, []string{"routing.ttft_ms", "routing.dispatcher"}},
		{"response without routing", func() any { r := sampleResponse(); r.Routing = nil; return r }(), []string{"usage.total_tokens"}, []string{"routing"}},
		{"chunk", sampleChunk(false), []string{"id", "object", "created", "model", "choices.0.index", "choices.0.delta.role", "choices.0.delta.content", "choices.0.finish_reason"},
			[]string{"usage", "routing"}},
		{"last chunk", sampleChunk(true), []string{"choices.0.finish_reason", "choices.0.delta", "usage.prompt_tokens", "routing.queue_ms"},
			[]string{"choices.0.delta.content", "choices.0.delta.role"}},
		{"heartbeat", sampleHeartbeat(), []string{"worker", "tier", "deployment", "provider", "model", "host", "subject", "state", "seq",
			"interval_ms", "capacity", "in_flight", "weight", "order", "latency_ms", "ms_per_token", "samples", "completed", "failed", "received.d-1"}, nil},
		{"error body", sampleErrorBody(), []string{"error.type", "error.code", "error.message", "error.status", "error.retry_after_ms", "error.provider_status"}, nil},
		{"error body without hints", &schema.ErrorBody{Error: schema.NewError(schema.CodeInternal, "x")}, []string{"error.status"},
			[]string{"error.retry_after_ms", "error.provider_status"}},
	}
	for _, codec := range []schema.Codec{schema.JSON, schema.MsgPack} {
		for _, tt := range tests {
			t.Run(codec.String()+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				m := generic(t, codec, tt.v)
				for _, p := range tt.present {
					if _, ok := lookup(m, p); !ok {
						t.Errorf("field %s missing from %v", p, m)
					}
				}
				for _, p := range tt.absent {
					if _, ok := lookup(m, p); ok {
						t.Errorf("field %s present in %v, want it omitted", p, m)
					}
				}
			})
		}
	}
}

func TestWireValuesMatchTheProtocol(t *testing.T) {
	t.Parallel()
	for _, codec := range []schema.Codec{schema.JSON, schema.MsgPack} {
		t.Run(codec.String(), func(t *testing.T) {
			t.Parallel()
			m := generic(t, codec, sampleResponse())
			want := map[string]any{
				"object":                    "chat.completion",
				"choices.0.message.role":    "assistant",
				"choices.0.message.content": "hello",
				"choices.0.finish_reason":   "length",
				"routing.tier":              "tier1",
			}
			for p, w := range want {
				if got, _ := lookup(m, p); got != w {
					t.Errorf("%s = %#v, want %#v", p, got, w)
				}
			}
			c := generic(t, codec, sampleChunk(false))
			if got, ok := lookup(c, "choices.0.finish_reason"); !ok || got != nil {
				t.Errorf("chunk finish_reason = %#v (present %v), want null", got, ok)
			}
			if got, _ := lookup(c, "object"); got != "chat.completion.chunk" {
				t.Errorf("chunk object = %#v", got)
			}
		})
	}
}

func TestDecodeReplyReturnsResponseOrTypedError(t *testing.T) {
	t.Parallel()
	for _, codec := range []schema.Codec{schema.JSON, schema.MsgPack} {
		t.Run(codec.String(), func(t *testing.T) {
			t.Parallel()
			ok, _ := codec.Marshal(sampleResponse())
			resp, err := schema.DecodeReply(codec, ok, false)
			if err != nil || resp.Text() != "hello" {
				t.Fatalf("DecodeReply(success) = %+v, %v", resp, err)
			}
			bad, _ := codec.Marshal(sampleErrorBody())
			resp, err = schema.DecodeReply(codec, bad, true)
			if resp != nil || schema.CodeOf(err) != schema.CodeRateLimited {
				t.Fatalf("DecodeReply(error) = %+v, %v; want rate_limited", resp, err)
			}
			if _, err := schema.DecodeReply(codec, []byte{0xc1, '{'}, false); err == nil {
				t.Fatal("DecodeReply(garbage) succeeded")
			}
		})
	}
}

func TestResponseTextOfEmptyChoicesIsEmpty(t *testing.T) {
	t.Parallel()
	if got := (&schema.Response{}).Text(); got != "" {
		t.Fatalf("Text() = %q", got)
	}
}
