package anthropic_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
)

// The API's input_json_delta fragments carry whitespace ({"city": "Paris"})
// and may split anywhere; thinking blocks come before the answer, and an
// input-less tool_use may have no delta at all. The pieces pass the
// fragments on as they are; the returned calls carry compact arguments,
// as Complete's do.
func TestProvider_Stream_APIFormattedToolInput(t *testing.T) {
	t.Parallel()
	p := upstream(t, testKey, func(w http.ResponseWriter, r *http.Request) {
		sseEvents(w,
			"message_start", messageStart,
			"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`,
			"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}`,
			"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}`,
			"content_block_stop", `{"type":"content_block_stop","index":0}`,
			"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
			"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking."}}`,
			"content_block_stop", `{"type":"content_block_stop","index":1}`,
			"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_A","name":"get_weather","input":{}}}`,
			"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}`,
			"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}`,
			"ping", `{"type":"ping"}`,
			"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ris\", \"days\": 2}"}}`,
			"content_block_stop", `{"type":"content_block_stop","index":2}`,
			"content_block_start", `{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_B","name":"get_time","input":{}}}`,
			"content_block_stop", `{"type":"content_block_stop","index":3}`,
			"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}`,
			"message_stop", `{"type":"message_stop"}`)
	})
	var got pieces
	var raw []schema.ChunkChoice
	resp, err := p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "q"), Tools: []schema.Tool{weather, clock}},
		func(c schema.ChunkChoice) error { raw = append(raw, c); return got.emit(c) })
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	want := []schema.ToolCall{
		{ID: "toolu_A", Type: "function", Function: schema.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris","days":2}`}},
		{ID: "toolu_B", Type: "function", Function: schema.FunctionCall{Name: "get_time", Arguments: `{}`}},
	}
	c := resp.Choices[0]
	if !reflect.DeepEqual(c.Message.ToolCalls, want) || c.Message.Text() != "Checking." || c.FinishReason != "tool_calls" {
		t.Errorf("response %+v", c)
	}
	if got.calls[0].Function.Arguments != `{"city": "Paris", "days": 2}` || got.calls[1].Function.Arguments != `{}` ||
		got.text.String() != "Checking." {
		t.Errorf("pieces reassemble to %q %+v", got.text.String(), got.calls)
	}
	// Call indexes count tool_use blocks (0, 1), not content blocks (2, 3).
	var indexes []int
	for _, c := range raw {
		for _, d := range c.Delta.ToolCalls {
			indexes = append(indexes, d.Index)
		}
	}
	if !reflect.DeepEqual(indexes, []int{0, 0, 0, 1, 1}) {
		t.Errorf("tool call piece indexes %v", indexes)
	}
}

func TestProvider_Stream_EmitErrorOnAToolPieceStops(t *testing.T) {
	t.Parallel()
	fake := anthropictest.NewServer(t, anthropictest.Config{Respond: weatherScript("Paris", "Oslo")})
	p := newProvider(t, fake, nil)
	stop := errors.New("producer gone")
	var calls int
	_, err := p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "q"), Tools: []schema.Tool{weather}},
		func(c schema.ChunkChoice) error {
			calls++
			if len(c.Delta.ToolCalls) > 0 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want emit's error", err)
	}
	if calls != 4 { // "Let ", "me ", "look." then the first tool piece, no more
		t.Errorf("emit called %d times", calls)
	}
}
