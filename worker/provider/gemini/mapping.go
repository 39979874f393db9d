package gemini

import "github.com/llmq/llmq/schema"

// Gemini's content roles.
const (
	roleUser  = "user"
	roleModel = "model"
)

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
