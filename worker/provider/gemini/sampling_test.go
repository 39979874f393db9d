package gemini_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

func TestSampling_SeedAndPenaltiesGoInGenerationConfig(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := userRequest("hi")
	req.Seed = ptr(int64(42))
	req.PresencePenalty = ptr(0.5)
	req.FrequencyPenalty = ptr(-1.0)
	req.StreamOptions = &schema.StreamOptions{IncludeUsage: true} // llmq always reports usage; nothing to send
	if _, err := newProvider(t, srv).Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	want := &geminitest.GenerationConfig{Seed: ptr(int32(42)), PresencePenalty: ptr(0.5), FrequencyPenalty: ptr(-1.0)}
	if got := srv.Requests()[0].Body.GenerationConfig; !reflect.DeepEqual(got, want) {
		t.Errorf("generationConfig = %+v, want %+v", got, want)
	}
}

func TestSampling_SeedBeyond32BitsIsBadRequest(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := userRequest("hi")
	req.Seed = ptr(int64(1) << 40)
	_, err := newProvider(t, srv).Complete(context.Background(), req)
	if e := wantCode(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "seed") {
		t.Errorf("message %q", e.Message)
	}
}

func TestSampling_NAsksForCandidatesAndStreamsEachToItsChoice(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Reply: "one two"})
	req := userRequest("hi")
	req.N = ptr(3)
	p := newProvider(t, srv)
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if g := srv.Requests()[0].Body.GenerationConfig; g == nil || *g.CandidateCount != 3 {
		t.Fatalf("generationConfig = %+v", g)
	}
	wantTexts := []string{"one two", "one two (2)", "one two (3)"}
	if len(resp.Choices) != 3 {
		t.Fatalf("choices = %+v", resp.Choices)
	}
	for i, c := range resp.Choices {
		if c.Index != i || c.Message.Text() != wantTexts[i] || c.FinishReason != schema.FinishStop {
			t.Errorf("choice %d = %+v", i, c)
		}
	}
	// 2 + 3 + 3 words.
	if resp.Usage.CompletionTokens != 8 {
		t.Errorf("usage = %+v", resp.Usage)
	}

	texts := make([]string, 3)
	sresp, err := p.Stream(context.Background(), req, func(c schema.ChunkChoice) error {
		texts[c.Index] += c.Delta.Content
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(texts, wantTexts) {
		t.Errorf("streamed texts %q, want %q", texts, wantTexts)
	}
	if !reflect.DeepEqual(sresp.Choices, resp.Choices) {
		t.Errorf("stream choices %+v, want %+v", sresp.Choices, resp.Choices)
	}
}

func TestSampling_NBeyondGeminiLimitIsBadRequest(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := userRequest("hi")
	req.N = ptr(9)
	_, err := newProvider(t, srv).Complete(context.Background(), req)
	if e := wantCode(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "candidate_count") {
		t.Errorf("message %q", e.Message)
	}
}

func TestLogprobs_MappedFromLogprobsResult(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Reply: "hi there"})
	req := userRequest("x")
	req.Logprobs = true
	req.TopLogprobs = ptr(2)
	p := newProvider(t, srv)
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	g := srv.Requests()[0].Body.GenerationConfig
	if g == nil || g.ResponseLogprobs == nil || !*g.ResponseLogprobs || g.Logprobs == nil || *g.Logprobs != 2 {
		t.Fatalf("generationConfig = %+v", g)
	}
	want := &schema.Logprobs{Content: []schema.TokenLogprob{
		{Token: "hi ", Logprob: -0.1, Bytes: []int{'h', 'i', ' '}, TopLogprobs: []schema.TopLogprob{
			{Token: "hi ", Logprob: -0.1, Bytes: []int{'h', 'i', ' '}}, {Token: "alt1", Logprob: -1.1, Bytes: []int{'a', 'l', 't', '1'}}}},
		{Token: "there", Logprob: -0.2, Bytes: []int{'t', 'h', 'e', 'r', 'e'}, TopLogprobs: []schema.TopLogprob{
			{Token: "there", Logprob: -0.2, Bytes: []int{'t', 'h', 'e', 'r', 'e'}}, {Token: "alt1", Logprob: -1.2, Bytes: []int{'a', 'l', 't', '1'}}}},
	}}
	if got := resp.Choices[0].Logprobs; !reflect.DeepEqual(got, want) {
		t.Errorf("logprobs = %+v\nwant %+v", got, want)
	}

	// Streamed, each piece carries the logprobs of its tokens.
	var streamed []schema.TokenLogprob
	sresp, err := p.Stream(context.Background(), req, func(c schema.ChunkChoice) error {
		if c.Logprobs == nil {
			return fmt.Errorf("piece %q without logprobs", c.Delta.Content)
		}
		streamed = append(streamed, c.Logprobs.Content...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(streamed, want.Content) || !reflect.DeepEqual(sresp.Choices[0].Logprobs, want) {
		t.Errorf("streamed logprobs %+v\nresponse %+v\nwant %+v", streamed, sresp.Choices[0].Logprobs, want)
	}

	// logprobs alone asks for the chosen tokens only.
	req.TopLogprobs = nil
	if _, err := p.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if g := srv.Requests()[2].Body.GenerationConfig; g.Logprobs != nil || !*g.ResponseLogprobs {
		t.Errorf("generationConfig = %+v", g)
	}
}

func TestReasoningEffort_MapsToThinkingBudget(t *testing.T) {
	t.Parallel()
	cases := []struct {
		model, effort string
		budget        int
	}{
		{"gemini-2.5-flash", "none", 0},
		{"gemini-2.5-flash", "minimal", 1},
		{"gemini-2.5-flash-lite", "minimal", 512},
		{"gemini-2.5-pro", "minimal", 128},
		{"gemini-2.0-flash", "minimal", 128},
		{"gemini-2.5-flash", "low", 1024},
		{"gemini-2.5-flash", "medium", 2048},
		{"gemini-2.5-flash", "high", 4096},
	}
	for _, tc := range cases {
		t.Run(tc.model+"/"+tc.effort, func(t *testing.T) {
			t.Parallel()
			srv := geminitest.NewServer(t, geminitest.Config{})
			req := userRequest("think")
			req.ReasoningEffort = tc.effort
			p := newProvider(t, srv, func(o *provider.Options) { o.Model = tc.model })
			if _, err := p.Complete(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			g := srv.Requests()[0].Body.GenerationConfig
			if g == nil || g.ThinkingConfig == nil || g.ThinkingConfig.ThinkingBudget == nil || *g.ThinkingConfig.ThinkingBudget != tc.budget {
				t.Errorf("generationConfig = %+v", g)
			}
		})
	}
}

func TestReasoningEffort_NoneOnAThinkingOnlyModelIsGeminisBadRequest(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := userRequest("think")
	req.ReasoningEffort = "none"
	p := newProvider(t, srv, func(o *provider.Options) { o.Model = "gemini-2.5-pro" })
	_, err := p.Complete(context.Background(), req)
	if e := wantCode(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "only works in thinking mode") {
		t.Errorf("message %q", e.Message)
	}
}
