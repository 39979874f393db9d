package geminitest

import "encoding/json"

// Request is a GenerateContentRequest as the fake decoded it. Field names
// were normalised to camelCase (the API accepts snake_case too).
type Request struct {
	Contents          []Content         `json:"contents"`
	SystemInstruction *Content          `json:"systemInstruction,omitempty"`
	GenerationConfig  *GenerationConfig `json:"generationConfig,omitempty"`
	SafetySettings    json.RawMessage   `json:"safetySettings,omitempty"`
	Tools             []Tool            `json:"tools,omitempty"`
	ToolConfig        *ToolConfig       `json:"toolConfig,omitempty"`
	CachedContent     string            `json:"cachedContent,omitempty"`
}

// Tool is one tool: function declarations, or another kind (Google
// Search, code execution…), kept raw.
type Tool struct {
	FunctionDeclarations []FunctionDeclaration `json:"functionDeclarations,omitempty"`
	Other                json.RawMessage       `json:"other,omitempty"`
}

// FunctionDeclaration declares a function. Parameters is a Gemini Schema,
// kept as sent (the fake checked it).
type FunctionDeclaration struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ToolConfig holds the function calling configuration.
type ToolConfig struct {
	FunctionCallingConfig *FunctionCallingConfig `json:"functionCallingConfig,omitempty"`
}

// FunctionCallingConfig is how the model may call functions: Mode AUTO,
// ANY, NONE or VALIDATED, and with ANY the functions it may call.
type FunctionCallingConfig struct {
	Mode                 string   `json:"mode,omitempty"`
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

// Blob is inline data: a media type and base64 bytes.
type Blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

// FunctionCall is a call made by the model, in a "model" turn.
type FunctionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// FunctionResponse is a function's result, in a "user" turn.
type FunctionResponse struct {
	ID       string          `json:"id,omitempty"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

// ThinkingConfig sets a thinking model's budget.
type ThinkingConfig struct {
	ThinkingBudget  *int   `json:"thinkingBudget,omitempty"`
	IncludeThoughts *bool  `json:"includeThoughts,omitempty"`
	ThinkingLevel   string `json:"thinkingLevel,omitempty"`
}

// Content is one turn: a role ("user" or "model") and its parts.
type Content struct {
	Role  string `json:"role,omitempty"`
	Parts []Part `json:"parts"`
}

// Part is one piece of a content: text, inline data, a function call or a
// function response; the other data kinds are kept raw.
type Part struct {
	Text                string            `json:"text,omitempty"`
	Thought             bool              `json:"thought,omitempty"`
	ThoughtSignature    string            `json:"thoughtSignature,omitempty"`
	InlineData          *Blob             `json:"inlineData,omitempty"`
	FileData            json.RawMessage   `json:"fileData,omitempty"`
	FunctionCall        *FunctionCall     `json:"functionCall,omitempty"`
	FunctionResponse    *FunctionResponse `json:"functionResponse,omitempty"`
	ExecutableCode      json.RawMessage   `json:"executableCode,omitempty"`
	CodeExecutionResult json.RawMessage   `json:"codeExecutionResult,omitempty"`
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
	Seed             *int32          `json:"seed,omitempty"`
	PresencePenalty  *float64        `json:"presencePenalty,omitempty"`
	FrequencyPenalty *float64        `json:"frequencyPenalty,omitempty"`
	ResponseMimeType string          `json:"responseMimeType,omitempty"`
	ResponseSchema   json.RawMessage `json:"responseSchema,omitempty"`
	ResponseLogprobs *bool           `json:"responseLogprobs,omitempty"`
	Logprobs         *int            `json:"logprobs,omitempty"`
	ThinkingConfig   *ThinkingConfig `json:"thinkingConfig,omitempty"`
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

func blobFields() []string { return []string{"mimeType", "data"} }

func functionCallFields() []string { return []string{"id", "name", "args"} }

func functionResponseFields() []string {
	return []string{"id", "name", "response", "willContinue", "scheduling", "parts"}
}

func toolFields() []string {
	return []string{"functionDeclarations", "googleSearchRetrieval", "codeExecution", "googleSearch",
		"urlContext", "computerUse", "fileSearch", "googleMaps"}
}

func functionDeclarationFields() []string {
	return []string{"name", "description", "parameters", "parametersJsonSchema", "response",
		"responseJsonSchema", "behavior"}
}

func toolConfigFields() []string { return []string{"functionCallingConfig", "retrievalConfig"} }

func functionCallingConfigFields() []string { return []string{"mode", "allowedFunctionNames"} }

func thinkingConfigFields() []string {
	return []string{"includeThoughts", "thinkingBudget", "thinkingLevel"}
}

// schemaFields are the fields of the v1beta Schema (a subset of OpenAPI
// 3.0's schema object).
func schemaFields() []string {
	return []string{"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
		"properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
		"example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"}
}

// Reply shapes, as the API writes them.

type respPart struct {
	Text             string        `json:"text,omitempty"`
	FunctionCall     *FunctionCall `json:"functionCall,omitempty"`
	ThoughtSignature string        `json:"thoughtSignature,omitempty"`
}

type respContent struct {
	Parts []respPart `json:"parts"`
	Role  string     `json:"role"`
}

type respCandidate struct {
	Content        respContent     `json:"content"`
	FinishReason   string          `json:"finishReason,omitempty"`
	Index          int             `json:"index"`
	LogprobsResult *logprobsResult `json:"logprobsResult,omitempty"`
}

type logprobsCandidate struct {
	Token          string  `json:"token"`
	TokenID        int     `json:"tokenId"`
	LogProbability float64 `json:"logProbability"`
}

type topCandidates struct {
	Candidates []logprobsCandidate `json:"candidates"`
}

type logprobsResult struct {
	TopCandidates    []topCandidates     `json:"topCandidates"`
	ChosenCandidates []logprobsCandidate `json:"chosenCandidates"`
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
