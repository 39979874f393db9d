package cohere

import (
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// wireRequest is the body of POST /v2/chat.
type wireRequest struct {
	Model            string              `json:"model"`
	Messages         []wireMessage       `json:"messages"`
	MaxTokens        int                 `json:"max_tokens,omitempty"`
	Temperature      *float64            `json:"temperature,omitempty"`
	P                *float64            `json:"p,omitempty"`
	StopSequences    []string            `json:"stop_sequences,omitempty"`
	Stream           bool                `json:"stream"`
	Tools            []schema.Tool       `json:"tools,omitempty"`
	StrictTools      bool                `json:"strict_tools,omitempty"`
	ToolChoice       string              `json:"tool_choice,omitempty"`
	ResponseFormat   *wireResponseFormat `json:"response_format,omitempty"`
	Seed             *int64              `json:"seed,omitempty"`
	FrequencyPenalty *float64            `json:"frequency_penalty,omitempty"`
	PresencePenalty  *float64            `json:"presence_penalty,omitempty"`
	Logprobs         bool                `json:"logprobs,omitempty"`
}

// wireMessage is a v2 message. Content is a *schema.Content (a string),
// a []wireContentPart (text and images, user messages), or nil (left out:
// an assistant message that only calls tools).
type wireMessage struct {
	Role       string            `json:"role"`
	Content    any               `json:"content,omitempty"`
	ToolCalls  []schema.ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string            `json:"tool_call_id,omitempty"`
}

// wireContentPart is a user message's content item: text or an image,
// which v2 takes in OpenAI's image_url shape (a data URL or an http(s)
// URL, with detail).
type wireContentPart struct {
	Type     string           `json:"type"`
	Text     *string          `json:"text,omitempty"`
	ImageURL *schema.ImageURL `json:"image_url,omitempty"`
}

// wireResponseFormat is v2's response_format: text, or a JSON object,
// matching json_schema when given.
type wireResponseFormat struct {
	Type       string         `json:"type"`
	JSONSchema schema.RawJSON `json:"json_schema,omitempty"`
}

// Cohere's bounds of p; OpenAI's top_p may be 0 or 1, Cohere's may not.
const (
	minP = 0.01
	maxP = 0.99
)

// Cohere's tool_choice values; "auto" is the default, sent as nothing.
const (
	toolChoiceRequired = "REQUIRED"
	toolChoiceNone     = "NONE"
)

// emptyParameters is the schema sent for a tool declared without one: v2
// requires parameters.
var emptyParameters = schema.RawJSON(`{"type":"object","properties":{}}`)

// buildRequest maps an OpenAI-shaped request onto a v2 chat request. What
// v2 cannot express — a named tool_choice, parallel_tool_calls false, n
// above 1, top_logprobs, reasoning_effort — is refused with a bad_request
// naming it, or left out with DropParams.
func (p *Provider) buildRequest(req *schema.Request, stream bool) (*wireRequest, error) {
	if req == nil {
		return nil, schema.NewError(schema.CodeBadRequest, "cohere: no request")
	}
	w := &wireRequest{Model: p.o.Model, Stream: stream}
	if err := p.mapMessages(req, w); err != nil {
		return nil, err
	}
	if n := req.Limit(); n > 0 {
		w.MaxTokens = n
	}
	if req.Temperature != nil {
		t := max(*req.Temperature, 0)
		w.Temperature = &t
	}
	if req.TopP != nil {
		p := min(max(*req.TopP, minP), maxP)
		w.P = &p
	}
	for _, s := range req.Stop {
		if s != "" {
			w.StopSequences = append(w.StopSequences, s)
		}
	}
	w.Seed = req.Seed
	w.FrequencyPenalty = penalty(req.FrequencyPenalty)
	w.PresencePenalty = penalty(req.PresencePenalty)
	if err := p.mapTools(req, w); err != nil {
		return nil, err
	}
	if err := p.mapChoices(req, w); err != nil {
		return nil, err
	}
	w.ResponseFormat = responseFormat(req.ResponseFormat)
	return w, nil
}

// penalty clamps an OpenAI penalty (-2..2) into Cohere's range, 0..1.
func penalty(v *float64) *float64 {
	if v == nil {
		return nil
	}
	c := min(max(*v, 0), 1)
	return &c
}

// mapMessages maps the messages: developer becomes system; an assistant
// message keeps its tool calls (its content left out when it has none);
// a tool message keeps its tool_call_id; images go as image_url parts,
// which v2 takes in user messages only.
func (p *Provider) mapMessages(req *schema.Request, w *wireRequest) error {
	w.Messages = make([]wireMessage, 0, len(req.Messages))
	for i := range req.Messages {
		m := &req.Messages[i]
		wm := wireMessage{Role: m.Role}
		switch m.Role {
		case schema.RoleDeveloper:
			wm.Role = schema.RoleSystem
		case schema.RoleSystem, schema.RoleUser:
		case schema.RoleAssistant:
			wm.ToolCalls = m.ToolCalls
		case schema.RoleTool:
			if m.ToolCallID == "" {
				return schema.Errorf(schema.CodeBadRequest, "cohere: messages[%d].tool_call_id is required in a tool message", i)
			}
			wm.ToolCallID = m.ToolCallID
		default:
			return schema.Errorf(schema.CodeBadRequest,
				"cohere: messages[%d].role: %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
		switch {
		case m.HasImages() && m.Role != schema.RoleUser:
			return schema.Errorf(schema.CodeBadRequest, "cohere: messages[%d].content: images are accepted in user messages only", i)
		case m.HasImages():
			parts := make([]wireContentPart, len(m.Parts))
			for j := range m.Parts {
				part := &m.Parts[j]
				parts[j] = wireContentPart{Type: part.Type, ImageURL: part.ImageURL}
				if part.Type == schema.PartText {
					parts[j].Text = &part.Text
				}
			}
			wm.Content = parts
		case m.Role == schema.RoleAssistant && m.Text() == "" && len(m.ToolCalls) > 0:
			// content left out: v2 takes an assistant message of tool calls alone
		default:
			c := schema.Content(m.Text())
			wm.Content = &c
		}
		w.Messages = append(w.Messages, wm)
	}
	if len(w.Messages) == 0 {
		return schema.NewError(schema.CodeBadRequest, "cohere: no messages")
	}
	return nil
}

// mapTools maps tools (v2 takes OpenAI's shape; a tool without parameters
// gets an empty object schema, which v2 requires), strict (any strict
// tool turns on strict_tools, which v2 applies to all), tool_choice and
// parallel_tool_calls.
func (p *Provider) mapTools(req *schema.Request, w *wireRequest) error {
	if len(req.Tools) > 0 {
		w.Tools = make([]schema.Tool, len(req.Tools))
		for i, t := range req.Tools {
			if len(t.Function.Parameters) == 0 {
				t.Function.Parameters = emptyParameters
			}
			if t.Function.Strict != nil && *t.Function.Strict {
				w.StrictTools = true
			}
			t.Function.Strict = nil
			w.Tools[i] = t
		}
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Mode {
		case schema.ToolChoiceAuto, "":
		case schema.ToolChoiceRequired:
			w.ToolChoice = toolChoiceRequired
		case schema.ToolChoiceNone:
			w.ToolChoice = toolChoiceNone
		default:
			if err := p.o.Unsupported(Name, "tool_choice (a named function; Cohere has only REQUIRED and NONE)"); err != nil {
				return err
			}
		}
		if len(w.Tools) == 0 {
			w.ToolChoice = "" // Cohere refuses tool_choice without tools; no tools means no call anyway
		}
	}
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
		if err := p.o.Unsupported(Name, "parallel_tool_calls false (Cohere may always call tools in parallel)"); err != nil {
			return err
		}
	}
	return nil
}

// mapChoices maps logprobs (v2 gives each generated token's, without
// alternatives) and refuses what v2 cannot do: top_logprobs, n above 1,
// reasoning_effort.
func (p *Provider) mapChoices(req *schema.Request, w *wireRequest) error {
	w.Logprobs = req.Logprobs
	if req.TopLogprobs != nil && *req.TopLogprobs > 0 {
		if err := p.o.Unsupported(Name, "top_logprobs (Cohere gives no alternative tokens)"); err != nil {
			return err
		}
	}
	if req.N != nil && *req.N > 1 {
		if err := p.o.Unsupported(Name, "n above 1"); err != nil {
			return err
		}
	}
	if req.ReasoningEffort != "" {
		if err := p.o.Unsupported(Name, "reasoning_effort"); err != nil {
			return err
		}
	}
	return nil
}

// responseFormat maps OpenAI's response_format: text and json_object as
// they are, json_schema as json_object with its schema.
func responseFormat(rf *schema.ResponseFormat) *wireResponseFormat {
	if rf == nil {
		return nil
	}
	switch rf.Type {
	case schema.FormatJSONObject:
		return &wireResponseFormat{Type: schema.FormatJSONObject}
	case schema.FormatJSONSchema:
		out := &wireResponseFormat{Type: schema.FormatJSONObject}
		if rf.JSONSchema != nil {
			out.JSONSchema = rf.JSONSchema.Schema
		}
		return out
	}
	return &wireResponseFormat{Type: schema.FormatText}
}

// wireContent is one content item of a reply's message.
type wireContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type wireReplyMessage struct {
	Role      string            `json:"role"`
	Content   []wireContent     `json:"content"`
	ToolCalls []schema.ToolCall `json:"tool_calls"`
}

// toolCalls returns the message's calls, each typed "function".
func (m wireReplyMessage) toolCalls() []schema.ToolCall {
	for i := range m.ToolCalls {
		m.ToolCalls[i].Type = schema.ToolTypeFunction
	}
	return m.ToolCalls
}

// wireLogprob is v2's log probability of a piece of the reply: its text,
// the tokens it was made of and each token's log probability.
type wireLogprob struct {
	Text     string    `json:"text"`
	TokenIDs []int     `json:"token_ids"`
	Logprobs []float64 `json:"logprobs"`
}

// tokenLogprob maps a piece onto OpenAI's shape: its text as the token
// and the sum of its tokens' log probabilities (the log probability of
// the whole piece); v2 gives no alternatives.
func (l *wireLogprob) tokenLogprob() schema.TokenLogprob {
	sum := 0.0
	for _, v := range l.Logprobs {
		sum += v
	}
	return schema.TokenLogprob{Token: l.Text, Logprob: sum, TopLogprobs: []schema.TopLogprob{}}
}

// logprobs maps a reply's pieces, or returns nil when it has none.
func logprobs(items []wireLogprob) *schema.Logprobs {
	if items == nil {
		return nil
	}
	out := &schema.Logprobs{Content: make([]schema.TokenLogprob, len(items))}
	for i := range items {
		out.Content[i] = items[i].tokenLogprob()
	}
	return out
}

// text joins the message's text items; thinking and tool calls are not
// part of an OpenAI message's content.
func (m wireReplyMessage) text() string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// wireCounts is a pair of token counts.
type wireCounts struct {
	InputTokens  *float64 `json:"input_tokens"`
	OutputTokens *float64 `json:"output_tokens"`
}

// wireUsage is a reply's usage: billed_units are what Cohere charges
// (the prompt without its chat template), tokens what the model saw.
type wireUsage struct {
	BilledUnits *wireCounts `json:"billed_units"`
	Tokens      *wireCounts `json:"tokens"`
}

// counts returns the billed counts, else the model's.
func (u *wireUsage) counts() (prompt, completion int) {
	if u == nil {
		return 0, 0
	}
	pick := func(get func(*wireCounts) *float64) int {
		for _, c := range []*wireCounts{u.BilledUnits, u.Tokens} {
			if c != nil {
				if v := get(c); v != nil {
					return int(*v)
				}
			}
		}
		return 0
	}
	return pick(func(c *wireCounts) *float64 { return c.InputTokens }),
		pick(func(c *wireCounts) *float64 { return c.OutputTokens })
}

// wireReply is a non-streamed reply.
type wireReply struct {
	ID           string           `json:"id"`
	FinishReason string           `json:"finish_reason"`
	Message      wireReplyMessage `json:"message"`
	Usage        *wireUsage       `json:"usage"`
	Logprobs     []wireLogprob    `json:"logprobs"`
}

// Cohere's finish reasons.
const (
	finishComplete     = "COMPLETE"
	finishStopSequence = "STOP_SEQUENCE"
	finishMaxTokens    = "MAX_TOKENS"
	finishToolCall     = "TOOL_CALL"
	finishError        = "ERROR"
	finishTimeout      = "TIMEOUT"
)

// response builds the Response of a finished generation, or the error of
// one Cohere ended with ERROR or TIMEOUT.
func (p *Provider) response(id string, msg schema.Message, finish string, u *wireUsage, lp *schema.Logprobs) (*schema.Response, error) {
	switch finish {
	case finishError:
		return nil, schema.NewError(schema.CodeProviderError, "cohere: the generation ended with finish_reason ERROR")
	case finishTimeout:
		return nil, schema.NewError(schema.CodeTimeout, "cohere: the generation ended with finish_reason TIMEOUT")
	}
	if id == "" {
		id = provider.NewID()
	}
	prompt, completion := u.counts()
	return &schema.Response{
		ID:    id,
		Model: p.o.Model, // Cohere's reply does not name the model
		Choices: []schema.Choice{{
			Message:      msg,
			FinishReason: finishReason(finish),
			Logprobs:     lp,
		}},
		Usage: schema.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion},
	}, nil
}

// finishReason maps Cohere's finish_reason onto OpenAI's.
func finishReason(r string) string {
	switch r {
	case finishMaxTokens:
		return schema.FinishLength
	case finishToolCall:
		return schema.FinishToolCalls
	default: // COMPLETE, STOP_SEQUENCE, reasons added later
		return schema.FinishStop
	}
}
