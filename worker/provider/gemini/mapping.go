package gemini

import (
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// Gemini's content roles.
const (
	roleUser  = "user"
	roleModel = "model"
)

// buildRequest maps an OpenAI chat request onto a GenerateContentRequest.
// System and developer messages become systemInstruction parts, in order;
// assistant turns become "model"; consecutive turns of one role share one
// content; empty messages are dropped (Gemini rejects empty parts). It is a
// bad_request when no user or assistant text is left.
func buildRequest(req *schema.Request) (*generateRequest, error) {
	out := &generateRequest{Contents: []content{}}
	var system []part
	for _, m := range req.Messages {
		text := string(m.Content)
		if text == "" {
			continue
		}
		var role string
		switch m.Role {
		case schema.RoleSystem, schema.RoleDeveloper:
			system = append(system, part{Text: text})
			continue
		case schema.RoleAssistant:
			role = roleModel
		case schema.RoleUser:
			role = roleUser
		default:
			return nil, schema.Errorf(schema.CodeBadRequest, "gemini: message role %q is not supported", m.Role)
		}
		if n := len(out.Contents); n > 0 && out.Contents[n-1].Role == role {
			out.Contents[n-1].Parts = append(out.Contents[n-1].Parts, part{Text: text})
			continue
		}
		out.Contents = append(out.Contents, content{Role: role, Parts: []part{{Text: text}}})
	}
	if len(out.Contents) == 0 {
		return nil, schema.NewError(schema.CodeBadRequest, "gemini: at least one user or assistant message with text is required")
	}
	if len(system) > 0 {
		out.SystemInstruction = &content{Parts: system}
	}
	cfg := generationConfig{
		Temperature:     req.Temperature,
		TopP:            req.TopP,
		MaxOutputTokens: req.Limit(),
		StopSequences:   req.Stop,
	}
	if cfg.Temperature != nil || cfg.TopP != nil || cfg.MaxOutputTokens > 0 || len(cfg.StopSequences) > 0 {
		out.GenerationConfig = &cfg
	}
	return out, nil
}

// finishReason maps Gemini's finish reason onto OpenAI's.
func finishReason(r string) string {
	switch r {
	case "MAX_TOKENS":
		return schema.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return schema.FinishContentFilter
	}
	return schema.FinishStop
}

// candidateText returns the reply text of a candidate, thinking parts left
// out.
func candidateText(c *candidate) string {
	if c == nil || c.Content == nil {
		return ""
	}
	var b strings.Builder
	for _, p := range c.Content.Parts {
		if !p.Thought {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// usage maps usageMetadata onto OpenAI's usage. Thinking tokens are billed
// as output, so they count as completion tokens, as OpenAI counts
// reasoning tokens.
func usage(u *usageMetadata) schema.Usage {
	if u == nil {
		return schema.Usage{}
	}
	completion := u.CandidatesTokenCount + u.ThoughtsTokenCount
	return schema.Usage{
		PromptTokens:     u.PromptTokenCount,
		CompletionTokens: completion,
		TotalTokens:      u.PromptTokenCount + completion,
	}
}

// response assembles the OpenAI response from what Gemini returned.
func (p *Provider) response(id, modelVersion, text, finish string, u *usageMetadata) *schema.Response {
	if id == "" {
		id = provider.NewID()
	}
	if modelVersion == "" {
		modelVersion = p.model
	}
	return &schema.Response{
		ID:    id,
		Model: modelVersion,
		Choices: []schema.Choice{{
			Index:        0,
			Message:      schema.Message{Role: schema.RoleAssistant, Content: schema.Content(text)},
			FinishReason: finishReason(finish),
		}},
		Usage: usage(u),
	}
}
