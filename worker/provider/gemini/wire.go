package gemini

import "encoding/json"

// The Gemini wire types the adapter sends and reads: only the fields it
// uses. Names follow the API's JSON (camelCase).

type part struct {
	Text string `json:"text,omitempty"`
	// Thought marks a thinking part of a thinking model; it is not reply
	// text.
	Thought bool `json:"thought,omitempty"`
	// ThoughtSignature is the opaque signature of the model's thinking
	// that thinking models put on a functionCall part; Gemini 3 wants it
	// back with the call.
	ThoughtSignature string            `json:"thoughtSignature,omitempty"`
	InlineData       *blob             `json:"inlineData,omitempty"`
	FunctionCall     *functionCall     `json:"functionCall,omitempty"`
	FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
}

// blob is inline data: an image, in base64.
type blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

// functionCall is a call the model made. Args is a JSON object; ID is set
// by newer API versions only.
type functionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// functionResponse is a tool's result, sent back to the model. Response
// is a JSON object.
type functionResponse struct {
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type functionDeclaration struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Parameters  *geminiSchema `json:"parameters,omitempty"`
}

type tool struct {
	FunctionDeclarations []functionDeclaration `json:"functionDeclarations"`
}

type functionCallingConfig struct {
	Mode                 string   `json:"mode"`
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

type toolConfig struct {
	FunctionCallingConfig functionCallingConfig `json:"functionCallingConfig"`
}

type thinkingConfig struct {
	ThinkingBudget int `json:"thinkingBudget"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

type generationConfig struct {
	Temperature      *float64        `json:"temperature,omitempty"`
	TopP             *float64        `json:"topP,omitempty"`
	MaxOutputTokens  int             `json:"maxOutputTokens,omitempty"`
	StopSequences    []string        `json:"stopSequences,omitempty"`
	CandidateCount   int             `json:"candidateCount,omitempty"`
	Seed             *int64          `json:"seed,omitempty"`
	PresencePenalty  *float64        `json:"presencePenalty,omitempty"`
	FrequencyPenalty *float64        `json:"frequencyPenalty,omitempty"`
	ResponseMimeType string          `json:"responseMimeType,omitempty"`
	ResponseSchema   *geminiSchema   `json:"responseSchema,omitempty"`
	ResponseLogprobs bool            `json:"responseLogprobs,omitempty"`
	Logprobs         *int            `json:"logprobs,omitempty"`
	ThinkingConfig   *thinkingConfig `json:"thinkingConfig,omitempty"`
}

type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	Tools             []tool            `json:"tools,omitempty"`
	ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
	GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
}

type candidate struct {
	Content        *content        `json:"content,omitempty"`
	FinishReason   string          `json:"finishReason,omitempty"`
	Index          int             `json:"index"`
	LogprobsResult *logprobsResult `json:"logprobsResult,omitempty"`
}

// logprobsResult holds, per decoding step, the chosen token and the most
// likely ones.
type logprobsResult struct {
	TopCandidates    []topCandidates    `json:"topCandidates"`
	ChosenCandidates []logprobCandidate `json:"chosenCandidates"`
}

type topCandidates struct {
	Candidates []logprobCandidate `json:"candidates"`
}

type logprobCandidate struct {
	Token          string  `json:"token"`
	LogProbability float64 `json:"logProbability"`
}

// The batchEmbedContents request and reply.

type embedContentRequest struct {
	Model                string  `json:"model"`
	Content              content `json:"content"`
	OutputDimensionality *int    `json:"outputDimensionality,omitempty"`
}

type batchEmbedRequest struct {
	Requests []embedContentRequest `json:"requests"`
}

type batchEmbedResponse struct {
	Embeddings []struct {
		Values []float32 `json:"values"`
	} `json:"embeddings"`
	Error *apiError `json:"error,omitempty"`
}

type usageMetadata struct {
	PromptTokenCount     int `json:"promptTokenCount"`
	CandidatesTokenCount int `json:"candidatesTokenCount"`
	ThoughtsTokenCount   int `json:"thoughtsTokenCount"`
	TotalTokenCount      int `json:"totalTokenCount"`
}

type promptFeedback struct {
	BlockReason string `json:"blockReason,omitempty"`
}

// generateResponse is a GenerateContentResponse, or one event of a stream.
// Error is set when a stream carries an error object instead.
type generateResponse struct {
	Candidates     []candidate     `json:"candidates"`
	PromptFeedback *promptFeedback `json:"promptFeedback,omitempty"`
	UsageMetadata  *usageMetadata  `json:"usageMetadata,omitempty"`
	ModelVersion   string          `json:"modelVersion,omitempty"`
	ResponseID     string          `json:"responseId,omitempty"`
	Error          *apiError       `json:"error,omitempty"`
}

// apiError is the body of every Gemini error: {"error": apiError}.
type apiError struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Status  string            `json:"status"`
	Details []json.RawMessage `json:"details,omitempty"`
}

// errorDetail holds the fields of the google.rpc detail types the adapter
// reads: ErrorInfo (reason) and RetryInfo (retryDelay).
type errorDetail struct {
	Type       string `json:"@type"`
	Reason     string `json:"reason"`
	RetryDelay string `json:"retryDelay"`
}
