package geminitest

import "encoding/json"

// Request is a GenerateContentRequest as the fake decoded it. Field names
// were normalised to camelCase (the API accepts snake_case too).
type Request struct {
	Contents          []Content         `json:"contents"`
	SystemInstruction *Content          `json:"systemInstruction,omitempty"`
	GenerationConfig  *GenerationConfig `json:"generationConfig,omitempty"`
	SafetySettings    json.RawMessage   `json:"safetySettings,omitempty"`
	Tools             json.RawMessage   `json:"tools,omitempty"`
	ToolConfig        json.RawMessage   `json:"toolConfig,omitempty"`
	CachedContent     string            `json:"cachedContent,omitempty"`
}

// Content is one turn: a role ("user" or "model") and its parts.
type Content struct {
	Role  string `json:"role,omitempty"`
	Parts []Part `json:"parts"`
}

// Part is one piece of a content. Only Text is interpreted; the other data
// kinds are kept raw.
type Part struct {
	Text                string          `json:"text,omitempty"`
	Thought             bool            `json:"thought,omitempty"`
	InlineData          json.RawMessage `json:"inlineData,omitempty"`
	FileData            json.RawMessage `json:"fileData,omitempty"`
	FunctionCall        json.RawMessage `json:"functionCall,omitempty"`
	FunctionResponse    json.RawMessage `json:"functionResponse,omitempty"`
	ExecutableCode      json.RawMessage `json:"executableCode,omitempty"`
	CodeExecutionResult json.RawMessage `json:"codeExecutionResult,omitempty"`
}

// hasData reports whether the part's data oneof is set (an empty text is
// unset, as in proto3).
func (p Part) hasData() bool {
	return p.Text != "" || p.InlineData != nil || p.FileData != nil || p.FunctionCall != nil ||
		p.FunctionResponse != nil || p.ExecutableCode != nil || p.CodeExecutionResult != nil
}

// GenerationConfig holds the generation parameters. Pointers tell "absent"
// from zero.
type GenerationConfig struct {
	StopSequences    []string        `json:"stopSequences,omitempty"`
	MaxOutputTokens  *int            `json:"maxOutputTokens,omitempty"`
	Temperature      *float64        `json:"temperature,omitempty"`
	TopP             *float64        `json:"topP,omitempty"`
	TopK             *int            `json:"topK,omitempty"`
	CandidateCount   *int            `json:"candidateCount,omitempty"`
	Seed             *int            `json:"seed,omitempty"`
	PresencePenalty  *float64        `json:"presencePenalty,omitempty"`
	FrequencyPenalty *float64        `json:"frequencyPenalty,omitempty"`
	ResponseMimeType string          `json:"responseMimeType,omitempty"`
	ResponseSchema   json.RawMessage `json:"responseSchema,omitempty"`
	ThinkingConfig   json.RawMessage `json:"thinkingConfig,omitempty"`
}

// Allowed field names (camelCase) per message type; the fake answers any
// other name with the API's "Unknown name" error.

func requestFields() []string {
	return []string{"contents", "systemInstruction", "generationConfig", "safetySettings",
		"tools", "toolConfig", "cachedContent"}
}

func contentFields() []string { return []string{"role", "parts"} }

func partFields() []string {
	return []string{"text", "thought", "thoughtSignature", "inlineData", "fileData", "functionCall",
		"functionResponse", "executableCode", "codeExecutionResult", "videoMetadata"}
}

func generationConfigFields() []string {
	return []string{"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
		"responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed",
		"presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers",
		"speechConfig", "thinkingConfig", "mediaResolution"}
}

// Reply shapes, as the API writes them.

type respPart struct {
	Text string `json:"text"`
}

type respContent struct {
	Parts []respPart `json:"parts"`
	Role  string     `json:"role"`
}

type respCandidate struct {
	Content      respContent `json:"content"`
	FinishReason string      `json:"finishReason,omitempty"`
	Index        int         `json:"index"`
}

type usageMetadata struct {
	PromptTokenCount     int `json:"promptTokenCount"`
	CandidatesTokenCount int `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount      int `json:"totalTokenCount"`
}

type promptFeedback struct {
	BlockReason string `json:"blockReason"`
}

type response struct {
	Candidates     []respCandidate `json:"candidates,omitempty"`
	PromptFeedback *promptFeedback `json:"promptFeedback,omitempty"`
	UsageMetadata  usageMetadata   `json:"usageMetadata"`
	ModelVersion   string          `json:"modelVersion"`
	ResponseID     string          `json:"responseId"`
}

type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []any  `json:"details,omitempty"`
}

type errorBody struct {
	Error apiError `json:"error"`
}
