package gemini

import (
	"fmt"
	"math"
	"strings"

	"github.com/llmq/llmq/schema"
)

// Gemini's function calling modes.
const (
	modeAuto = "AUTO"
	modeAny  = "ANY"
	modeNone = "NONE"
)

// tools maps tools onto one Tool of functionDeclarations (parameters
// converted to Gemini's Schema) and tool_choice onto
// toolConfig.functionCallingConfig: auto → AUTO, none → NONE, required →
// ANY, a named function → ANY allowing only it. Gemini calls functions in
// parallel when it sees fit and has no switch for it, so
// parallel_tool_calls: false with more than one tool is unsupported (as
// in LiteLLM).
func (p *Provider) tools(req *schema.Request, out *generateRequest) error {
	if len(req.Tools) > 0 {
		decls := make([]functionDeclaration, 0, len(req.Tools))
		for i, t := range req.Tools {
			d := functionDeclaration{Name: t.Function.Name, Description: t.Function.Description}
			if len(t.Function.Parameters) > 0 {
				s, err := convertSchema(t.Function.Parameters, fmt.Sprintf("tools[%d].function.parameters", i))
				if err != nil {
					return err
				}
				// Gemini refuses an OBJECT without properties ("should be
				// non-empty for OBJECT type"): a function without
				// parameters has none.
				if !(s.Type == typeObject && len(s.Properties) == 0) {
					d.Parameters = s
				}
			}
			decls = append(decls, d)
		}
		out.Tools = []tool{{FunctionDeclarations: decls}}
	}
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls && len(req.Tools) > 1 {
		if err := p.opts.Unsupported(name, "parallel_tool_calls"); err != nil {
			return err
		}
	}
	if tc := req.ToolChoice; tc != nil {
		var cfg functionCallingConfig
		switch tc.Mode {
		case schema.ToolChoiceAuto:
			cfg.Mode = modeAuto
		case schema.ToolChoiceNone:
			cfg.Mode = modeNone
		case schema.ToolChoiceRequired:
			cfg.Mode = modeAny
		case schema.ToolChoiceFunction:
			cfg = functionCallingConfig{Mode: modeAny, AllowedFunctionNames: []string{tc.Function}}
		default:
			return schema.Errorf(schema.CodeBadRequest, "%s: tool_choice: %q is not one of none, auto, required", name, tc.Mode)
		}
		// Without tools there is nothing to configure: Gemini refuses a
		// function calling mode other than NONE with no declarations.
		if len(req.Tools) > 0 {
			out.ToolConfig = &toolConfig{FunctionCallingConfig: cfg}
		}
	}
	return nil
}

// generationConfig maps the sampling and output parameters; nil when none
// is set.
func (p *Provider) generationConfig(req *schema.Request) (*generationConfig, error) {
	cfg := generationConfig{
		Temperature:      req.Temperature,
		TopP:             req.TopP,
		MaxOutputTokens:  req.Limit(),
		StopSequences:    req.Stop,
		Seed:             req.Seed,
		PresencePenalty:  req.PresencePenalty,
		FrequencyPenalty: req.FrequencyPenalty,
	}
	if req.Seed != nil && (*req.Seed < math.MinInt32 || *req.Seed > math.MaxInt32) {
		return nil, schema.Errorf(schema.CodeBadRequest, "%s: seed: %d is out of range: Gemini takes a 32-bit seed", name, *req.Seed)
	}
	if req.N != nil && *req.N > 1 {
		cfg.CandidateCount = *req.N
	}
	if req.Logprobs {
		cfg.ResponseLogprobs = true
		cfg.Logprobs = req.TopLogprobs
	}
	if f := req.ResponseFormat; f != nil {
		switch f.Type {
		case schema.FormatJSONObject:
			cfg.ResponseMimeType = "application/json"
		case schema.FormatJSONSchema:
			cfg.ResponseMimeType = "application/json"
			if f.JSONSchema != nil && len(f.JSONSchema.Schema) > 0 {
				s, err := convertSchema(f.JSONSchema.Schema, "response_format.json_schema.schema")
				if err != nil {
					return nil, err
				}
				cfg.ResponseSchema = s
			}
		}
	}
	if req.ReasoningEffort != "" {
		cfg.ThinkingConfig = &thinkingConfig{ThinkingBudget: thinkingBudget(req.ReasoningEffort, p.model)}
	}
	if cfg.empty() {
		return nil, nil
	}
	return &cfg, nil
}

// thinkingBudget maps reasoning_effort onto a thinking budget in tokens,
// as LiteLLM does: none 0 (thinking off), minimal the model's smallest
// budget, low 1024, medium 2048, high 4096.
func thinkingBudget(effort, model string) int {
	switch effort {
	case "none":
		return 0
	case "minimal":
		m := strings.ToLower(model)
		switch {
		case strings.Contains(m, "gemini-2.5-flash-lite"):
			return 512
		case strings.Contains(m, "gemini-2.5-pro"):
			return 128
		case strings.Contains(m, "gemini-2.5-flash"):
			return 1
		}
		return 128
	case "low":
		return 1024
	case "medium":
		return 2048
	}
	return 4096
}

func (c *generationConfig) empty() bool {
	return c.Temperature == nil && c.TopP == nil && c.MaxOutputTokens == 0 && len(c.StopSequences) == 0 &&
		c.CandidateCount == 0 && c.Seed == nil && c.PresencePenalty == nil && c.FrequencyPenalty == nil &&
		c.ResponseMimeType == "" && !c.ResponseLogprobs && c.ThinkingConfig == nil
}
