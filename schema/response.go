package schema

// Finish reasons, as OpenAI names them. Providers map theirs onto these.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishContentFilter = "content_filter"
	FinishToolCalls     = "tool_calls"
)

// Usage counts tokens, as OpenAI does.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens" msgpack:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens" msgpack:"completion_tokens"`
	TotalTokens      int `json:"total_tokens" msgpack:"total_tokens"`
}

// Choice is one completion of a chat.completion reply.
type Choice struct {
	Index        int     `json:"index" msgpack:"index"`
	Message      Message `json:"message" msgpack:"message"`
	FinishReason string  `json:"finish_reason" msgpack:"finish_reason"`
	// Logprobs are given when the request asked and the provider had them.
	Logprobs *Logprobs `json:"logprobs,omitempty" msgpack:"logprobs,omitempty"`
}

// Routing tells a producer where its job ran and how long each part took.
type Routing struct {
	Tier       string `json:"tier" msgpack:"tier"`
	Deployment string `json:"deployment" msgpack:"deployment"`
	Worker     string `json:"worker" msgpack:"worker"`
	Provider   string `json:"provider" msgpack:"provider"`
	Model      string `json:"model" msgpack:"model"`
	Dispatcher string `json:"dispatcher,omitempty" msgpack:"dispatcher,omitempty"`
	// Attempts counts the deployments tried, this one included.
	Attempts int `json:"attempts" msgpack:"attempts"`
	// QueueMs is the time the job waited in the dispatcher for a free worker.
	QueueMs float64 `json:"queue_ms" msgpack:"queue_ms"`
	// CallMs is the time the provider call took, as the worker measured it.
	CallMs float64 `json:"call_ms" msgpack:"call_ms"`
	// TTFTMs is the time to the first token of a streamed reply.
	TTFTMs float64 `json:"ttft_ms,omitempty" msgpack:"ttft_ms,omitempty"`
	// CostUSD is what the call cost in US dollars, from the deployment's
	// input_cost_per_token and output_cost_per_token and the usage;
	// omitted when the deployment has no prices.
	CostUSD float64 `json:"cost_usd,omitempty" msgpack:"cost_usd,omitempty"`
}

// Response is a finished completion: an OpenAI chat.completion object plus
// llmq's routing block.
type Response struct {
	ID      string   `json:"id" msgpack:"id"`
	Object  string   `json:"object" msgpack:"object"`
	Created int64    `json:"created" msgpack:"created"`
	Model   string   `json:"model" msgpack:"model"`
	Choices []Choice `json:"choices" msgpack:"choices"`
	Usage   Usage    `json:"usage" msgpack:"usage"`
	Routing *Routing `json:"routing,omitempty" msgpack:"routing,omitempty"`
}

// Text returns the first choice's content, or "".
func (r *Response) Text() string {
	if len(r.Choices) == 0 {
		return ""
	}
	return r.Choices[0].Message.Text()
}

// ToolCalls returns the first choice's tool calls, or nil.
func (r *Response) ToolCalls() []ToolCall {
	if len(r.Choices) == 0 {
		return nil
	}
	return r.Choices[0].Message.ToolCalls
}

// Delta is the part of a message a chunk adds.
type Delta struct {
	Role    string `json:"role,omitempty" msgpack:"role,omitempty"`
	Content string `json:"content,omitempty" msgpack:"content,omitempty"`
	// ToolCalls are pieces of tool calls (see ToolCallDelta).
	ToolCalls []ToolCallDelta `json:"tool_calls,omitempty" msgpack:"tool_calls,omitempty"`
}

// ChunkChoice is one choice of a streamed chunk.
type ChunkChoice struct {
	Index        int     `json:"index" msgpack:"index"`
	Delta        Delta   `json:"delta" msgpack:"delta"`
	FinishReason *string `json:"finish_reason" msgpack:"finish_reason"`
	// Logprobs of this chunk's tokens, when asked for and given.
	Logprobs *Logprobs `json:"logprobs,omitempty" msgpack:"logprobs,omitempty"`
}

// Chunk is one message of a streamed reply: an OpenAI chat.completion.chunk.
// The last chunk of a stream carries the finish reason, usage and routing,
// and its message has header HeaderStream set to StreamEnd.
type Chunk struct {
	ID      string        `json:"id" msgpack:"id"`
	Object  string        `json:"object" msgpack:"object"`
	Created int64         `json:"created" msgpack:"created"`
	Model   string        `json:"model" msgpack:"model"`
	Choices []ChunkChoice `json:"choices" msgpack:"choices"`
	Usage   *Usage        `json:"usage,omitempty" msgpack:"usage,omitempty"`
	Routing *Routing      `json:"routing,omitempty" msgpack:"routing,omitempty"`
}

// Object names used on the wire.
const (
	ObjectCompletion = "chat.completion"
	ObjectChunk      = "chat.completion.chunk"
)
