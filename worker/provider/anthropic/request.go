package anthropic

import (
	"strings"
	"unicode"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// Thinking budgets for reasoning_effort, LiteLLM's: low (and minimal)
// 1024 — the API's minimum —, medium 2048, high 4096 tokens.
const (
	ThinkingBudgetLow    = 1024
	ThinkingBudgetMedium = 2048
	ThinkingBudgetHigh   = 4096
)

// buildRequest maps an OpenAI-shaped request onto a Messages request for
// model. Parameters the API has no counterpart for go through
// o.Unsupported.
func buildRequest(o *provider.Options, model string, req *schema.Request, stream bool) (*wireRequest, error) {
	if req == nil {
		return nil, schema.NewError(schema.CodeBadRequest, "anthropic: no request")
	}
	if req.IsEmbedding() {
		return nil, schema.NewError(schema.CodeBadRequest, "anthropic: input: Anthropic has no embeddings API")
	}
	if err := refuseUnsupported(o, req); err != nil {
		return nil, err
	}
	w := &wireRequest{Model: model, MaxTokens: req.Limit(), Stream: stream}
	if w.MaxTokens <= 0 {
		w.MaxTokens = DefaultMaxTokens
	}
	system, err := w.addMessages(req.Messages)
	if err != nil {
		return nil, err
	}
	if len(w.Messages) == 0 {
		return nil, schema.NewError(schema.CodeBadRequest,
			"anthropic: the Messages API needs at least one user message besides the system prompt")
	}
	// A final assistant message is a prefill the model continues; the API
	// refuses one that ends in whitespace.
	if last := &w.Messages[len(w.Messages)-1]; last.Role == schema.RoleAssistant && last.Content.Blocks == nil {
		last.Content.Text = strings.TrimRightFunc(last.Content.Text, unicode.IsSpace)
	}
	w.System = strings.Join(system, "\n\n")
	if req.Temperature != nil {
		t := min(max(*req.Temperature, 0), 1) // OpenAI allows 0..2, Anthropic 0..1
		w.Temperature = &t
	}
	if req.TopP != nil {
		tp := *req.TopP
		w.TopP = &tp
	}
	for _, s := range req.Stop {
		if strings.TrimSpace(s) != "" { // the API refuses whitespace-only ones
			w.StopSequences = append(w.StopSequences, s)
		}
	}
	if req.User != "" {
		w.Metadata = &wireMetadata{UserID: req.User}
	}
	if budget := thinkingBudget(req.ReasoningEffort); budget > 0 {
		w.Thinking = &wireThinking{Type: "enabled", BudgetTokens: budget}
		if req.Limit() <= 0 {
			// The budget is part of max_tokens: keep the default room
			// for the answer on top of it.
			w.MaxTokens = DefaultMaxTokens + budget
		}
	}
	if err := w.addTools(req); err != nil {
		return nil, err
	}
	return w, nil
}

// refuseUnsupported answers the parameters the Messages API has no
// counterpart for: seed, the penalties, logprobs and n > 1. A penalty of 0
// and n of 1 ask for nothing and pass.
func refuseUnsupported(o *provider.Options, req *schema.Request) error {
	for _, p := range []struct {
		set  bool
		name string
	}{
		{req.Seed != nil, "seed"},
		{req.PresencePenalty != nil && *req.PresencePenalty != 0, "presence_penalty"},
		{req.FrequencyPenalty != nil && *req.FrequencyPenalty != 0, "frequency_penalty"},
		{req.Logprobs, "logprobs"},
		{req.TopLogprobs != nil, "top_logprobs"},
		{req.N != nil && *req.N > 1, "n"},
	} {
		if p.set {
			if err := o.Unsupported(Name, p.name); err != nil {
				return err
			}
		}
	}
	return nil
}

// thinkingBudget maps reasoning_effort onto a thinking budget, 0 for none.
func thinkingBudget(effort string) int {
	switch effort {
	case "minimal", "low":
		return ThinkingBudgetLow
	case "medium":
		return ThinkingBudgetMedium
	case "high":
		return ThinkingBudgetHigh
	}
	return 0 // "", "none"
}
