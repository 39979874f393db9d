package cohere_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/cohere"
	"github.com/llmq/llmq/worker/provider/cohere/coheretest"
)

const weatherParams = `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`

func weatherTools() []schema.Tool {
	return []schema.Tool{
		{Type: schema.ToolTypeFunction, Function: schema.Function{Name: "get_weather", Description: "Weather of a city", Parameters: schema.RawJSON(weatherParams)}},
		{Type: schema.ToolTypeFunction, Function: schema.Function{Name: "get_time"}}, // no parameters: v2 wants some
	}
}

var parallelAnswer = coheretest.Answer{ToolPlan: "I will look up the weather and the time.", ToolCalls: []coheretest.ToolCall{
	{ID: "get_weather_w", Name: "get_weather", Arguments: `{"city":"Paris, the capital of France"}`},
	{ID: "get_time_t", Name: "get_time", Arguments: `{}`},
}}

func toolRequest(text string) *schema.Request {
	return &schema.Request{Messages: msgs("user", text), Tools: weatherTools()}
}

// pieces collects streamed pieces.
type pieces struct{ got []schema.ChunkChoice }

func (p *pieces) emit(c schema.ChunkChoice) error { p.got = append(p.got, c); return nil }

// calls reassembles the tool calls from the pieces as a client would.
func (p *pieces) calls(t *testing.T) []schema.ToolCall {
	t.Helper()
	var out []schema.ToolCall
	for _, c := range p.got {
		for _, d := range c.Delta.ToolCalls {
			if d.ID != "" {
				if d.Index != len(out) || d.Type != schema.ToolTypeFunction || d.Function.Name == "" {
					t.Fatalf("first piece of a call %+v: want the next index, type function and a name", d)
				}
				out = append(out, schema.ToolCall{ID: d.ID, Type: d.Type, Function: schema.FunctionCall{Name: d.Function.Name}})
			} else if d.Function.Name != "" || d.Type != "" {
				t.Fatalf("later piece %+v carries more than arguments", d)
			}
			out[d.Index].Function.Arguments += d.Function.Arguments
		}
	}
	return out
}

func call(t *testing.T, p *cohere.Provider, streamed bool, req *schema.Request) (*schema.Response, *pieces) {
	t.Helper()
	var ps pieces
	var resp *schema.Response
	var err error
	if streamed {
		resp, err = p.Stream(context.Background(), req, ps.emit)
	} else {
		resp, err = p.Complete(context.Background(), req)
	}
	if err != nil {
		t.Fatal(err)
	}
	return resp, &ps
}

func TestTools_LoopPlainAndStreamed(t *testing.T) {
	t.Parallel()
	for _, streamed := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "streamed"}[streamed], func(t *testing.T) {
			t.Parallel()
			fake := coheretest.NewServer(t, coheretest.Config{Key: testKey, Answers: []coheretest.Answer{
				{ToolPlan: "I will check.", ToolCalls: []coheretest.ToolCall{{ID: "get_weather_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
				{Content: "It is sunny in Paris."},
			}})
			p := newProvider(t, fake, nil)
			req := toolRequest("What is the weather in Paris?")
			first, ps := call(t, p, streamed, req)
			want := []schema.ToolCall{{ID: "get_weather_1", Type: "function", Function: schema.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}
			if !reflect.DeepEqual(first.ToolCalls(), want) || first.Choices[0].FinishReason != schema.FinishToolCalls || first.Text() != "" {
				t.Fatalf("first turn = %+v, want the call, finish tool_calls and no text (the plan is not content)", first.Choices)
			}
			if streamed && !reflect.DeepEqual(ps.calls(t), want) {
				t.Errorf("pieces %+v do not reassemble to the call", ps.got)
			}
			req.Messages = append(req.Messages, first.Choices[0].Message,
				schema.Message{Role: schema.RoleTool, ToolCallID: "get_weather_1", Content: `{"sky":"sunny"}`})
			second, _ := call(t, p, streamed, req)
			if second.Text() != "It is sunny in Paris." || second.Choices[0].FinishReason != schema.FinishStop {
				t.Errorf("second turn = %+v", second.Choices)
			}
			sent := fake.Requests()[1].Body
			msgs := sent["messages"].([]any)
			wantAsk := map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{
				"id": "get_weather_1", "type": "function", "function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris"}`}}}}
			if !reflect.DeepEqual(msgs[1], wantAsk) {
				t.Errorf("assistant message sent as %v", msgs[1])
			}
			if want := map[string]any{"role": "tool", "tool_call_id": "get_weather_1", "content": `{"sky":"sunny"}`}; !reflect.DeepEqual(msgs[2], want) {
				t.Errorf("tool message sent as %v", msgs[2])
			}
			tools := sent["tools"].([]any)
			if len(tools) != 2 || tools[1].(map[string]any)["function"].(map[string]any)["parameters"] == nil {
				t.Errorf("tools sent as %v", tools)
			}
			if u := second.Usage; u.PromptTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage %+v", u)
			}
		})
	}
}

func TestTools_StreamedCallsReassembleToTheNonStreamedOnes(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{Answers: []coheretest.Answer{parallelAnswer}})
	p := newProvider(t, fake, nil)
	plain, _ := call(t, p, false, toolRequest("weather and time?"))
	streamed, ps := call(t, p, true, toolRequest("weather and time?"))
	if len(plain.ToolCalls()) != 2 || !reflect.DeepEqual(plain.ToolCalls(), streamed.ToolCalls()) {
		t.Fatalf("plain %+v, streamed %+v", plain.ToolCalls(), streamed.ToolCalls())
	}
	if got := ps.calls(t); !reflect.DeepEqual(got, plain.ToolCalls()) || len(ps.got) < 6 {
		t.Errorf("%d pieces reassemble to %+v", len(ps.got), got)
	}
	if streamed.Usage != plain.Usage || streamed.Choices[0].FinishReason != schema.FinishToolCalls {
		t.Errorf("usage %+v / %+v, finish %q", plain.Usage, streamed.Usage, streamed.Choices[0].FinishReason)
	}
}

func TestToolChoice_EachMode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		choice schema.ToolChoice
		drop   bool
		sent   any // tool_choice in the body; nil: left out
		calls  int
		code   string
	}{
		{"none", schema.ToolChoice{Mode: schema.ToolChoiceNone}, false, "NONE", 0, ""},
		{"auto", schema.ToolChoice{Mode: schema.ToolChoiceAuto}, false, nil, 2, ""},
		{"required", schema.ToolChoice{Mode: schema.ToolChoiceRequired}, false, "REQUIRED", 2, ""},
		{"named is refused", schema.ToolChoice{Mode: schema.ToolChoiceFunction, Function: "get_time"}, false, nil, 0, schema.CodeBadRequest},
		{"named is dropped with drop_params", schema.ToolChoice{Mode: schema.ToolChoiceFunction, Function: "get_time"}, true, nil, 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fake := coheretest.NewServer(t, coheretest.Config{Answers: []coheretest.Answer{parallelAnswer}})
			p := newProvider(t, fake, func(o *provider.Options) { o.DropParams = c.drop })
			req := toolRequest("weather and time?")
			req.ToolChoice = &c.choice
			resp, err := p.Complete(context.Background(), req)
			if c.code != "" {
				if e := wantError(t, err, c.code); !strings.Contains(e.Message, "tool_choice") || len(fake.Requests()) != 0 {
					t.Errorf("message %q, %d calls", e.Message, len(fake.Requests()))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.ToolCalls()) != c.calls {
				t.Errorf("%d calls, want %d", len(resp.ToolCalls()), c.calls)
			}
			if got := fake.Requests()[0].Body["tool_choice"]; !reflect.DeepEqual(got, c.sent) {
				t.Errorf("tool_choice sent as %v, want %v", got, c.sent)
			}
		})
	}
}

func TestTools_StrictBecomesStrictTools(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{})
	p := newProvider(t, fake, nil)
	req := toolRequest("x")
	req.Tools[0].Function.Strict = ptr(true)
	call(t, p, false, req)
	b := fake.Requests()[0].Body
	fn := b["tools"].([]any)[0].(map[string]any)["function"].(map[string]any)
	if b["strict_tools"] != true || fn["strict"] != nil {
		t.Errorf("body %s", fake.Requests()[0].Raw)
	}
}

// Each parameter Cohere cannot honour is a bad_request naming it, or,
// with drop_params, left out of a call that then succeeds.
func TestUnsupported_RefusedOrDropped(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*schema.Request){
		"parallel_tool_calls": func(r *schema.Request) { r.ParallelToolCalls = ptr(false) },
		"n above 1":           func(r *schema.Request) { r.N = ptr(2) },
		"top_logprobs":        func(r *schema.Request) { r.Logprobs, r.TopLogprobs = true, ptr(2) },
		"reasoning_effort":    func(r *schema.Request) { r.ReasoningEffort = "high" },
	}
	for param, mod := range cases {
		for _, drop := range []bool{false, true} {
			t.Run(param+map[bool]string{false: "/refused", true: "/dropped"}[drop], func(t *testing.T) {
				t.Parallel()
				fake := coheretest.NewServer(t, coheretest.Config{})
				p := newProvider(t, fake, func(o *provider.Options) { o.DropParams = drop })
				req := toolRequest("x")
				mod(req)
				resp, err := p.Complete(context.Background(), req)
				if !drop {
					if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, param) || len(fake.Requests()) != 0 {
						t.Errorf("message %q, %d calls", e.Message, len(fake.Requests()))
					}
					return
				}
				if err != nil || resp.Text() != "echo: x" {
					t.Fatalf("dropped: %v, %+v", err, resp)
				}
			})
		}
	}
}

func TestResponseFormat_JSONSchemaAndJSONObjectAnswered(t *testing.T) {
	t.Parallel()
	schemaText := `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`
	cases := map[string]struct {
		rf   *schema.ResponseFormat
		sent map[string]any
	}{
		"json_schema": {&schema.ResponseFormat{Type: schema.FormatJSONSchema, JSONSchema: &schema.JSONSchema{Name: "w", Schema: schema.RawJSON(schemaText)}},
			map[string]any{"type": "json_object", "json_schema": map[string]any{"type": "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []any{"city"}}}},
		"json_object": {&schema.ResponseFormat{Type: schema.FormatJSONObject}, map[string]any{"type": "json_object"}},
		"text":        {&schema.ResponseFormat{Type: schema.FormatText}, map[string]any{"type": "text"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := coheretest.NewServer(t, coheretest.Config{Answers: []coheretest.Answer{{Content: `{"city":"Paris"}`}}})
			p := newProvider(t, fake, nil)
			req := &schema.Request{Messages: msgs("user", "Where? Answer in JSON."), ResponseFormat: c.rf}
			resp, _ := call(t, p, false, req)
			var got struct{ City string }
			if err := json.Unmarshal([]byte(resp.Text()), &got); err != nil || got.City != "Paris" {
				t.Errorf("answer %q (%v)", resp.Text(), err)
			}
			if b := fake.Requests()[0].Body["response_format"]; !reflect.DeepEqual(b, c.sent) {
				t.Errorf("response_format sent as %v, want %v", b, c.sent)
			}
		})
	}
}

const png1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

func TestImages_DataURIAndURLPassedThrough(t *testing.T) {
	t.Parallel()
	png, _ := base64.StdEncoding.DecodeString(png1x1)
	fetched := make(chan struct{}, 4)
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetched <- struct{}{}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png)
	}))
	t.Cleanup(img.Close)
	for name, url := range map[string]string{"data URI": "data:image/png;base64," + png1x1, "URL": img.URL + "/cat.png"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := coheretest.NewServer(t, coheretest.Config{Reply: "a cat"})
			p := newProvider(t, fake, nil)
			req := &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Parts: []schema.ContentPart{
				{Type: schema.PartText, Text: "What is this?"},
				{Type: schema.PartImageURL, ImageURL: &schema.ImageURL{URL: url, Detail: "low"}},
			}}}}
			resp, _ := call(t, p, false, req)
			if resp.Text() != "a cat" || resp.Usage.PromptTokens != 3+85 {
				t.Errorf("answer %q, usage %+v", resp.Text(), resp.Usage)
			}
			want := []any{map[string]any{"type": "text", "text": "What is this?"},
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": url, "detail": "low"}}}
			if got := fake.Requests()[0].Body["messages"].([]any)[0].(map[string]any)["content"]; !reflect.DeepEqual(got, want) {
				t.Errorf("content sent as %v", got)
			}
			if strings.HasPrefix(url, "http") {
				select {
				case <-fetched:
				default:
					t.Error("the fake did not fetch the image URL")
				}
			}
		})
	}
}

func TestImages_OutsideUserMessagesRefused(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{})
	p := newProvider(t, fake, nil)
	req := &schema.Request{Messages: []schema.Message{{Role: schema.RoleSystem, Parts: []schema.ContentPart{
		{Type: schema.PartImageURL, ImageURL: &schema.ImageURL{URL: "data:image/png;base64," + png1x1}}}}, {Role: "user", Content: "x"}}}
	_, err := p.Complete(context.Background(), req)
	if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "messages[0].content") || len(fake.Requests()) != 0 {
		t.Errorf("message %q", e.Message)
	}
}

func TestSampling_SeedAndPenaltiesClampedToCoheresRange(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{})
	p := newProvider(t, fake, nil)
	req := &schema.Request{Messages: msgs("user", "x"), Seed: ptr(int64(42)), FrequencyPenalty: ptr(1.5), PresencePenalty: ptr(-0.5)}
	call(t, p, false, req)
	b := fake.Requests()[0].Body
	if b["seed"] != 42.0 || b["frequency_penalty"] != 1.0 || b["presence_penalty"] != 0.0 {
		t.Errorf("body %s", fake.Requests()[0].Raw)
	}
}

func TestLogprobs_PlainAndStreamed(t *testing.T) {
	t.Parallel()
	fake := coheretest.NewServer(t, coheretest.Config{Reply: "one two three"})
	p := newProvider(t, fake, nil)
	req := &schema.Request{Messages: msgs("user", "count"), Logprobs: true}
	plain, _ := call(t, p, false, req)
	lp := plain.Choices[0].Logprobs
	if lp == nil || len(lp.Content) != 3 || lp.Content[1].Token != " two" || lp.Content[1].Logprob != coheretest.Logprob(1) {
		t.Fatalf("logprobs %+v", lp)
	}
	streamed, ps := call(t, p, true, req)
	if !reflect.DeepEqual(streamed.Choices[0].Logprobs, lp) {
		t.Errorf("streamed %+v, want %+v", streamed.Choices[0].Logprobs, lp)
	}
	for _, c := range ps.got {
		if c.Logprobs == nil || c.Logprobs.Content[0].Token != c.Delta.Content {
			t.Errorf("piece %+v lacks its logprobs", c)
		}
	}
	if fake.Requests()[0].Body["logprobs"] != true {
		t.Errorf("body %s", fake.Requests()[0].Raw)
	}
}

func TestStream_ToolCallIndexOutOfBoundsIsAProviderError(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"type\":\"message-start\",\"id\":\"m\"}\n\n"+
			"data: {\"type\":\"tool-call-start\",\"index\":1000000000,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}}}}\n\n")
	}))
	t.Cleanup(ts.Close)
	c := provider.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	p, err := cohere.New(provider.Options{Model: testModel, APIBase: ts.URL, APIKey: testKey, HTTP: c})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Stream(context.Background(), &schema.Request{Messages: msgs("user", "x")}, func(schema.ChunkChoice) error { return nil })
	if e := wantError(t, err, schema.CodeProviderError); !strings.Contains(e.Message, "index 1000000000") {
		t.Errorf("message %q", e.Message)
	}
}
