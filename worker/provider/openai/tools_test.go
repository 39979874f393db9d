package openai_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

const weatherParams = `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`

func weatherTools() []schema.Tool {
	return []schema.Tool{
		{Type: schema.ToolTypeFunction, Function: schema.Function{Name: "get_weather", Description: "Weather of a city", Parameters: schema.RawJSON(weatherParams)}},
		{Type: schema.ToolTypeFunction, Function: schema.Function{Name: "get_time", Parameters: schema.RawJSON(`{"type":"object","properties":{}}`)}},
	}
}

// parallelAnswer asks for two calls at once.
var parallelAnswer = openaitest.Answer{ToolCalls: []openaitest.ToolCall{
	{ID: "call_w", Name: "get_weather", Arguments: `{"city":"Paris, the capital of France"}`},
	{ID: "call_t", Name: "get_time", Arguments: `{}`},
}}

func toolRequest(text string) *schema.Request {
	req := userRequest(text)
	req.Tools = weatherTools()
	return req
}

// pieces collects streamed pieces.
type pieces struct{ got []schema.ChunkChoice }

func (p *pieces) emit(c schema.ChunkChoice) error { p.got = append(p.got, c); return nil }

// calls reassembles the tool calls of choice 0 from the pieces as a
// client of the stream would.
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

func TestProvider_Tools_LoopPlainAndStreamed(t *testing.T) {
	t.Parallel()
	for _, streamed := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "streamed"}[streamed]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, srv := setup(t, openaitest.Config{Key: testKey, Answers: []openaitest.Answer{
				{ToolCalls: []openaitest.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
				{Content: "It is sunny in Paris."},
			}}, nil)
			call := func(req *schema.Request) *schema.Response {
				t.Helper()
				var resp *schema.Response
				var err error
				if streamed {
					var ps pieces
					resp, err = p.Stream(context.Background(), req, ps.emit)
					if err == nil && !reflect.DeepEqual(ps.calls(t), resp.ToolCalls()) {
						t.Errorf("streamed pieces %+v do not reassemble to %+v", ps.got, resp.ToolCalls())
					}
				} else {
					resp, err = p.Complete(context.Background(), req)
				}
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			req := toolRequest("What is the weather in Paris?")
			first := call(req)
			want := []schema.ToolCall{{ID: "call_1", Type: "function", Function: schema.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}
			if !reflect.DeepEqual(first.ToolCalls(), want) || first.Choices[0].FinishReason != schema.FinishToolCalls || first.Text() != "" {
				t.Fatalf("first turn = %+v, want the call and finish tool_calls", first.Choices)
			}
			req.Messages = append(req.Messages, first.Choices[0].Message,
				schema.Message{Role: schema.RoleTool, ToolCallID: "call_1", Content: `{"sky":"sunny"}`})
			second := call(req)
			if second.Text() != "It is sunny in Paris." || second.Choices[0].FinishReason != schema.FinishStop || second.ToolCalls() != nil {
				t.Errorf("second turn = %+v", second.Choices)
			}
			sent := srv.Requests()[1].Body
			msgs := sent["messages"].([]any)
			wantAsk := map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
				"id": "call_1", "type": "function", "function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris"}`}}}}
			if !reflect.DeepEqual(msgs[1], wantAsk) {
				t.Errorf("assistant message sent as %v, want %v", msgs[1], wantAsk)
			}
			if want := map[string]any{"role": "tool", "tool_call_id": "call_1", "content": `{"sky":"sunny"}`}; !reflect.DeepEqual(msgs[2], want) {
				t.Errorf("tool message sent as %v", msgs[2])
			}
			var raw struct {
				Tools json.RawMessage `json:"tools"`
			}
			wantTools, _ := json.Marshal(weatherTools())
			if err := json.Unmarshal(srv.Requests()[1].Raw, &raw); err != nil || string(raw.Tools) != string(wantTools) {
				t.Errorf("tools sent as %s, want %s (%v)", raw.Tools, wantTools, err)
			}
			if u := second.Usage; u.PromptTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage = %+v", u)
			}
		})
	}
}

func TestProvider_Tools_StreamedCallsReassembleToTheNonStreamedOnes(t *testing.T) {
	t.Parallel()
	p, _ := setup(t, openaitest.Config{Answers: []openaitest.Answer{parallelAnswer}}, nil)
	plain, err := p.Complete(context.Background(), toolRequest("weather and time?"))
	if err != nil {
		t.Fatal(err)
	}
	var ps pieces
	streamed, err := p.Stream(context.Background(), toolRequest("weather and time?"), ps.emit)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.ToolCalls()) != 2 || !reflect.DeepEqual(plain.ToolCalls(), streamed.ToolCalls()) {
		t.Fatalf("plain %+v, streamed %+v", plain.ToolCalls(), streamed.ToolCalls())
	}
	if got := ps.calls(t); !reflect.DeepEqual(got, plain.ToolCalls()) {
		t.Errorf("pieces reassemble to %+v", got)
	}
	if len(ps.got) < 6 {
		t.Errorf("%d pieces: the arguments came whole, not as fragments", len(ps.got))
	}
	if streamed.Choices[0].FinishReason != schema.FinishToolCalls || plain.Choices[0].FinishReason != schema.FinishToolCalls {
		t.Errorf("finish %q/%q", plain.Choices[0].FinishReason, streamed.Choices[0].FinishReason)
	}
}

func TestProvider_ParallelToolCalls_FalseIsSentAndOneCallComes(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Answers: []openaitest.Answer{parallelAnswer}}, nil)
	req := toolRequest("weather and time?")
	no := false
	req.ParallelToolCalls = &no
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ToolCalls()) != 1 || srv.Requests()[0].Body["parallel_tool_calls"] != false {
		t.Errorf("calls %+v, body %s", resp.ToolCalls(), srv.Requests()[0].Raw)
	}
}

func TestProvider_ToolChoice_EachModeIsSentAsOpenAIsShape(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		choice schema.ToolChoice
		sent   any
		calls  []string
		finish string
	}{
		{"none", schema.ToolChoice{Mode: schema.ToolChoiceNone}, "none", nil, schema.FinishStop},
		{"auto", schema.ToolChoice{Mode: schema.ToolChoiceAuto}, "auto", []string{"get_weather", "get_time"}, schema.FinishToolCalls},
		{"required", schema.ToolChoice{Mode: schema.ToolChoiceRequired}, "required", []string{"get_weather", "get_time"}, schema.FinishToolCalls},
		{"named", schema.ToolChoice{Mode: schema.ToolChoiceFunction, Function: "get_time"},
			map[string]any{"type": "function", "function": map[string]any{"name": "get_time"}}, []string{"get_time"}, schema.FinishStop},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, srv := setup(t, openaitest.Config{Answers: []openaitest.Answer{parallelAnswer}}, nil)
			req := toolRequest("weather and time?")
			req.ToolChoice = &c.choice
			resp, err := p.Complete(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tc := range resp.ToolCalls() {
				names = append(names, tc.Function.Name)
			}
			if !reflect.DeepEqual(names, c.calls) || resp.Choices[0].FinishReason != c.finish {
				t.Errorf("calls %v finish %q, want %v %q", names, resp.Choices[0].FinishReason, c.calls, c.finish)
			}
			if got := srv.Requests()[0].Body["tool_choice"]; !reflect.DeepEqual(got, c.sent) {
				t.Errorf("tool_choice sent as %v, want %v", got, c.sent)
			}
		})
	}
}

func TestProvider_ResponseFormat_JSONSchemaAndJSONObjectAnswered(t *testing.T) {
	t.Parallel()
	schemaText := `{"type":"object","properties":{"city":{"type":"string"},"temp":{"type":"number"}},"required":["city","temp"]}`
	strict := true
	formats := map[string]*schema.ResponseFormat{
		"json_schema": {Type: schema.FormatJSONSchema, JSONSchema: &schema.JSONSchema{Name: "weather", Schema: schema.RawJSON(schemaText), Strict: &strict}},
		"json_object": {Type: schema.FormatJSONObject},
	}
	for name, rf := range formats {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, srv := setup(t, openaitest.Config{Answers: []openaitest.Answer{{Content: `{"city":"Paris","temp":21.5}`}}}, nil)
			req := userRequest("Weather in Paris, as JSON.")
			req.ResponseFormat = rf
			resp, err := p.Complete(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				City string  `json:"city"`
				Temp float64 `json:"temp"`
			}
			if err := json.Unmarshal([]byte(resp.Text()), &got); err != nil || got.City != "Paris" || got.Temp != 21.5 {
				t.Errorf("answer %q (%v)", resp.Text(), err)
			}
			var sent schema.ResponseFormat
			b, _ := json.Marshal(srv.Requests()[0].Body["response_format"])
			if err := json.Unmarshal(b, &sent); err != nil || sent.Type != rf.Type {
				t.Fatalf("response_format sent as %s", b)
			}
			if rf.JSONSchema != nil && (sent.JSONSchema.Name != "weather" || *sent.JSONSchema.Strict != true) {
				t.Errorf("json_schema sent as %s", b)
			}
		})
	}
}

// png1x1 is a 1x1 PNG.
const png1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

func TestProvider_Images_DataURIAndURLPassedThrough(t *testing.T) {
	t.Parallel()
	png, _ := base64.StdEncoding.DecodeString(png1x1)
	fetched := make(chan struct{}, 4)
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetched <- struct{}{}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png)
	}))
	t.Cleanup(img.Close)
	sources := map[string]string{"data URI": "data:image/png;base64," + png1x1, "URL": img.URL + "/cat.png"}
	for name, url := range sources {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, srv := setup(t, openaitest.Config{Reply: "a cat"}, nil)
			req := &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Parts: []schema.ContentPart{
				{Type: schema.PartText, Text: "What is this?"},
				{Type: schema.PartImageURL, ImageURL: &schema.ImageURL{URL: url, Detail: "low"}},
			}}}}
			resp, err := p.Complete(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text() != "a cat" || resp.Usage.PromptTokens != 3+85 {
				t.Errorf("answer %q, usage %+v (want the image's 85 tokens counted)", resp.Text(), resp.Usage)
			}
			want := []any{map[string]any{"type": "text", "text": "What is this?"},
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": url, "detail": "low"}}}
			if got := srv.Requests()[0].Body["messages"].([]any)[0].(map[string]any)["content"]; !reflect.DeepEqual(got, want) {
				t.Errorf("content sent as %v", got)
			}
			if strings.HasPrefix(url, "http") {
				waitFor(t, fetched, "the fake to have fetched the image URL")
			}
		})
	}
}

func TestProvider_Sampling_SeedPenaltiesReasoningEffortPassedThrough(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{}, nil)
	req := userRequest("hi")
	seed := int64(42)
	req.Seed, req.PresencePenalty, req.FrequencyPenalty, req.ReasoningEffort = &seed, floatp(0.5), floatp(-1.25), "low"
	if _, err := p.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	b := srv.Requests()[0].Body
	if b["seed"] != 42.0 || b["presence_penalty"] != 0.5 || b["frequency_penalty"] != -1.25 || b["reasoning_effort"] != "low" {
		t.Errorf("body %s", srv.Requests()[0].Raw)
	}
}

func TestProvider_Sampling_StreamOptionsNeverSentWithoutStream(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{}, nil)
	req := userRequest("hi")
	req.StreamOptions = &schema.StreamOptions{IncludeUsage: true}
	if _, err := p.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Requests()[0].Body["stream_options"]; ok {
		t.Errorf("body %s", srv.Requests()[0].Raw)
	}
}

func TestProvider_Logprobs_PlainAndStreamed(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Reply: "one two three"}, nil)
	req := userRequest("count")
	req.Logprobs, req.TopLogprobs = true, intp(2)
	plain, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	lp := plain.Choices[0].Logprobs
	if lp == nil || len(lp.Content) != 3 || lp.Content[1].Token != " two" || lp.Content[1].Logprob != openaitest.Logprob(1) ||
		len(lp.Content[1].TopLogprobs) != 2 || lp.Content[1].TopLogprobs[1].Token != "alt1" {
		t.Fatalf("logprobs = %+v", lp)
	}
	var ps pieces
	streamed, err := p.Stream(context.Background(), req, ps.emit)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(streamed.Choices[0].Logprobs, lp) {
		t.Errorf("streamed logprobs %+v, want %+v", streamed.Choices[0].Logprobs, lp)
	}
	for _, c := range ps.got {
		if c.Logprobs == nil || len(c.Logprobs.Content) != 1 || c.Logprobs.Content[0].Token != c.Delta.Content {
			t.Errorf("piece %+v lacks the logprobs of its token", c)
		}
	}
	if b := srv.Requests()[0].Body; b["logprobs"] != true || b["top_logprobs"] != 2.0 {
		t.Errorf("body %s", srv.Requests()[0].Raw)
	}
}

func TestProvider_N_EveryChoicePlainAndStreamed(t *testing.T) {
	t.Parallel()
	p, srv := setup(t, openaitest.Config{Reply: "a b"}, nil)
	req := userRequest("x")
	req.N = intp(3)
	plain, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var ps pieces
	streamed, err := p.Stream(context.Background(), req, ps.emit)
	if err != nil {
		t.Fatal(err)
	}
	for _, resp := range []*schema.Response{plain, streamed} {
		if len(resp.Choices) != 3 {
			t.Fatalf("%d choices", len(resp.Choices))
		}
		for k, c := range resp.Choices {
			want := "a b"
			if k > 0 {
				want += " #" + string(rune('0'+k))
			}
			if c.Index != k || c.Message.Text() != want || c.FinishReason != schema.FinishStop {
				t.Errorf("choice %d = %+v, want %q", k, c, want)
			}
		}
	}
	var joined [3]strings.Builder
	for _, c := range ps.got {
		joined[c.Index].WriteString(c.Delta.Content)
	}
	for k := range joined {
		if joined[k].String() != streamed.Choices[k].Message.Text() {
			t.Errorf("pieces of choice %d = %q", k, joined[k].String())
		}
	}
	if srv.Requests()[1].Body["n"] != 3.0 {
		t.Errorf("body %s", srv.Requests()[1].Raw)
	}
}

func TestProvider_Tools_FakeRefusalsBecomeBadRequestsNamingTheParam(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*schema.Request){
		"tools[0].function.name": func(r *schema.Request) { r.Tools[0].Function.Name = "get weather" },
		"messages[1].role": func(r *schema.Request) {
			r.Messages = append(r.Messages, schema.Message{Role: schema.RoleTool, ToolCallID: "call_x", Content: "x"})
		},
		"response_format.json_schema.schema": func(r *schema.Request) {
			r.ResponseFormat = &schema.ResponseFormat{Type: schema.FormatJSONSchema, JSONSchema: &schema.JSONSchema{Name: "w"}}
		},
	}
	for param, mod := range cases {
		t.Run(param, func(t *testing.T) {
			t.Parallel()
			p, _ := setup(t, openaitest.Config{}, nil)
			req := toolRequest("x")
			mod(req)
			_, err := p.Complete(context.Background(), req)
			if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, param) {
				t.Errorf("message %q does not name %s", e.Message, param)
			}
		})
	}
}
