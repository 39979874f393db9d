package anthropictest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// Request is a decoded Messages request body.
type Request struct {
	Model         string         `json:"model"`
	MaxTokens     *int           `json:"max_tokens"`
	Messages      []Message      `json:"messages"`
	System        Text           `json:"system"`
	StopSequences []string       `json:"stop_sequences"`
	Temperature   *float64       `json:"temperature"`
	TopP          *float64       `json:"top_p"`
	TopK          *int           `json:"top_k"`
	Stream        *bool          `json:"stream"`
	Metadata      map[string]any `json:"metadata"`
	Tools         []Tool         `json:"tools"`
	ToolChoice    *ToolChoice    `json:"tool_choice"`
	Thinking      *Thinking      `json:"thinking"`
}

// Message is one input message.
type Message struct {
	Role    string `json:"role"`
	Content Text   `json:"content"`
}

// Text is a content or system field: a string, or an array of content
// blocks whose text blocks are joined.
type Text struct {
	// Value is the text.
	Value string
	// Array tells whether the field was an array of blocks; Blocks counts
	// them, TextBlocks counts those of type "text", and EmptyBlock tells
	// whether one of these was empty.
	Array      bool
	Blocks     int
	TextBlocks int
	EmptyBlock bool
	// Items are the blocks of an array.
	Items []Block
}

// UnmarshalJSON accepts a string or an array of content blocks.
func (t *Text) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &t.Value)
	}
	var blocks []Block
	if err := json.Unmarshal(b, &blocks); err != nil {
		return errors.New("Input should be a valid string or a list of content blocks")
	}
	var sb strings.Builder
	for i, bl := range blocks {
		if bl.Type == "" {
			return fmt.Errorf("%d.type: Field required", i)
		}
		if bl.Type == "text" {
			t.TextBlocks++
			if bl.Text == nil {
				return fmt.Errorf("%d.text: Field required", i)
			}
			if *bl.Text == "" {
				t.EmptyBlock = true
			}
			sb.WriteString(*bl.Text)
		}
	}
	t.Value, t.Array, t.Blocks, t.Items = sb.String(), true, len(blocks), blocks
	return nil
}

// knownField reports whether the Messages API knows a top-level field; it
// refuses the others ("Extra inputs are not permitted").
func knownField(name string) bool {
	switch name {
	case "model", "messages", "max_tokens", "system", "stop_sequences", "temperature", "top_p", "top_k",
		"stream", "metadata", "tools", "tool_choice", "thinking", "service_tier", "container",
		"mcp_servers", "context_management":
		return true
	}
	return false
}

// decode parses and validates a request body the way the API does,
// returning the failure the API would answer with, or nil.
func decode(raw []byte, cfg *Config) (*Request, *Failure) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, invalid("Request body is not valid JSON: %v", err)
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !knownField(k) {
			return nil, invalid("%s: Extra inputs are not permitted", k)
		}
	}
	var r Request
	for _, k := range names {
		if err := decodeField(&r, k, fields[k]); err != nil {
			return nil, invalid("%s: %v", k, err)
		}
	}
	if f := validate(&r, fields, cfg); f != nil {
		return nil, f
	}
	return &r, nil
}

// decodeField decodes one top-level field into r, so that an error names
// the field as the API's errors do.
func decodeField(r *Request, name string, v json.RawMessage) error {
	one, _ := json.Marshal(map[string]json.RawMessage{name: v})
	d := json.NewDecoder(bytes.NewReader(one))
	switch name {
	case "tools", "tool_choice", "thinking":
		d.DisallowUnknownFields()
	}
	if err := d.Decode(r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("Input should be a valid %s", te.Type)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("%s: Extra inputs are not permitted", strings.Trim(f, `"`))
		}
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

func validate(r *Request, fields map[string]json.RawMessage, cfg *Config) *Failure {
	if _, ok := fields["model"]; !ok || r.Model == "" {
		return invalid("model: Field required")
	}
	if r.MaxTokens == nil {
		return invalid("max_tokens: Field required")
	}
	if *r.MaxTokens < 1 {
		return invalid("max_tokens: Input should be greater than or equal to 1")
	}
	if cfg.MaxOutputTokens > 0 && *r.MaxTokens > cfg.MaxOutputTokens {
		return invalid("max_tokens: %d > %d, which is the maximum allowed number of output tokens for %s",
			*r.MaxTokens, cfg.MaxOutputTokens, r.Model)
	}
	if _, ok := fields["messages"]; !ok {
		return invalid("messages: Field required")
	}
	if f := validateMessages(r.Messages); f != nil {
		return f
	}
	if f := validateTools(r.Tools); f != nil {
		return f
	}
	if f := validateToolChoice(r.ToolChoice, r.Tools); f != nil {
		return f
	}
	if f := validateThinking(r); f != nil {
		return f
	}
	if r.System.EmptyBlock {
		return invalid("system: text content blocks must be non-empty")
	}
	if t := r.Temperature; t != nil && (*t < 0 || *t > 1) {
		return invalid("temperature: range: 0..1")
	}
	if p := r.TopP; p != nil && (*p < 0 || *p > 1) {
		return invalid("top_p: range: 0..1")
	}
	if k := r.TopK; k != nil && *k < 0 {
		return invalid("top_k: Input should be greater than or equal to 0")
	}
	for _, s := range r.StopSequences {
		if strings.TrimSpace(s) == "" {
			return invalid("stop_sequences: each stop sequence must contain non-whitespace")
		}
	}
	for k, v := range r.Metadata {
		if k != "user_id" {
			return invalid("metadata.%s: Extra inputs are not permitted", k)
		}
		if _, ok := v.(string); !ok && v != nil {
			return invalid("metadata.user_id: Input should be a valid string")
		}
	}
	return nil
}

func validateMessages(ms []Message) *Failure {
	if len(ms) == 0 {
		return invalid("messages: at least one message is required")
	}
	for i, m := range ms {
		switch m.Role {
		case "user", "assistant":
		case "system":
			return invalid("messages: Unexpected role \"system\". The Messages API accepts a top-level " +
				"`system` parameter, not \"system\" as an input message role.")
		case "":
			return invalid("messages.%d.role: Field required", i)
		default:
			return invalid("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
	}
	if ms[0].Role != "user" {
		return invalid("messages: first message must use the \"user\" role")
	}
	for i, m := range ms {
		for j := range m.Content.Items {
			if f := validateBlock(i, j, m.Role, &m.Content.Items[j]); f != nil {
				return f
			}
		}
	}
	for i, m := range ms {
		finalAssistant := i == len(ms)-1 && m.Role == "assistant"
		if m.Content.EmptyBlock {
			return invalid("messages: text content blocks must be non-empty")
		}
		switch {
		case finalAssistant && endsInText(m.Content):
			if strings.TrimRightFunc(m.Content.Value, unicode.IsSpace) != m.Content.Value {
				return invalid("messages: final assistant content cannot end with trailing whitespace")
			}
		case m.Content.Value == "" && !m.Content.Array, m.Content.Array && m.Content.Blocks == 0:
			return invalid("messages.%d: all messages must have non-empty content except for the optional final assistant message", i)
		case (!m.Content.Array || m.Content.TextBlocks > 0) && strings.TrimSpace(m.Content.Value) == "":
			return invalid("messages: text content blocks must contain non-whitespace text")
		}
	}
	return validateToolTurns(ms)
}

// endsInText reports whether content is a string or ends in a text block:
// only then may a final assistant message not end in whitespace.
func endsInText(c Text) bool {
	return !c.Array || (len(c.Items) > 0 && c.Items[len(c.Items)-1].Type == "text")
}

// words counts whitespace-separated words: the fake's tokens.
func words(s string) int { return len(strings.Fields(s)) }

// inputTokens counts the prompt's tokens: the system prompt's words and
// every message's.
func (r *Request) inputTokens() int {
	n := words(r.System.Value)
	for _, m := range r.Messages {
		n += words(m.Content.Value)
		for i := range m.Content.Items {
			n += blockTokens(&m.Content.Items[i])
		}
	}
	for _, t := range r.Tools {
		n += 1 + words(string(t.InputSchema))
		if t.Description != nil {
			n += words(*t.Description)
		}
	}
	return n
}

// blockTokens counts what a block adds to the prompt besides its text:
// ImageTokens for an image, a tool call's input, a tool result's content.
func blockTokens(b *Block) int {
	switch b.Type {
	case "image":
		return ImageTokens
	case "tool_use":
		return 1 + words(string(b.Input))
	case "tool_result":
		return words(b.ResultText())
	}
	return 0
}

// lastUser returns the text of the last user message.
func (r *Request) lastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content.Value
		}
	}
	return ""
}
