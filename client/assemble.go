package client

import (
	"strings"

	"github.com/llmq/llmq/schema"
)

// maxAssembledCalls bounds the tool calls an Accumulator keeps per
// choice: pieces of calls beyond it are dropped (a chunk is untrusted).
const maxAssembledCalls = 1024

// Accumulator assembles the chunks of a streamed reply into the response
// a non-streamed call would have returned: each choice's text, its tool
// calls (the first piece of call i gives its id and name, later pieces
// fragments of its arguments, joined in order), finish reasons, logprobs,
// and the usage and routing of the last chunk. The zero value is ready.
type Accumulator struct {
	resp    schema.Response
	text    []strings.Builder // per choice
	args    [][]strings.Builder
	started bool
}

// Add takes one chunk.
func (a *Accumulator) Add(c *schema.Chunk) {
	if !a.started {
		a.started = true
		a.resp.ID, a.resp.Created, a.resp.Model = c.ID, c.Created, c.Model
		a.resp.Object = schema.ObjectCompletion
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index < 0 || ch.Index >= schema.MaxChoices {
			continue
		}
		choice := a.choice(ch.Index)
		a.text[ch.Index].WriteString(ch.Delta.Content)
		for _, d := range ch.Delta.ToolCalls {
			if d.Index < 0 || d.Index >= maxAssembledCalls {
				continue
			}
			for len(choice.Message.ToolCalls) <= d.Index {
				choice.Message.ToolCalls = append(choice.Message.ToolCalls, schema.ToolCall{Type: schema.ToolTypeFunction})
				a.args[ch.Index] = append(a.args[ch.Index], strings.Builder{})
			}
			tc := &choice.Message.ToolCalls[d.Index]
			if d.ID != "" {
				tc.ID = d.ID
			}
			if d.Type != "" {
				tc.Type = d.Type
			}
			tc.Function.Name += d.Function.Name
			a.args[ch.Index][d.Index].WriteString(d.Function.Arguments)
		}
		if lp := ch.Logprobs; lp != nil {
			if choice.Logprobs == nil {
				choice.Logprobs = &schema.Logprobs{}
			}
			choice.Logprobs.Content = append(choice.Logprobs.Content, lp.Content...)
		}
		if ch.FinishReason != nil {
			choice.FinishReason = *ch.FinishReason
		}
	}
	if c.Usage != nil {
		a.resp.Usage = *c.Usage
	}
	if c.Routing != nil {
		a.resp.Routing = c.Routing
	}
}

// choice returns choice i, making it and those before it.
func (a *Accumulator) choice(i int) *schema.Choice {
	for len(a.resp.Choices) <= i {
		a.resp.Choices = append(a.resp.Choices, schema.Choice{Index: len(a.resp.Choices), Message: schema.Message{Role: schema.RoleAssistant}})
		a.text = append(a.text, strings.Builder{})
		a.args = append(a.args, nil)
	}
	return &a.resp.Choices[i]
}

// Response returns the response assembled from the chunks so far. It is
// a copy: adding chunks after does not change it.
func (a *Accumulator) Response() *schema.Response {
	out := a.resp
	out.Choices = make([]schema.Choice, len(a.resp.Choices))
	for i, c := range a.resp.Choices {
		c.Message.Content = schema.Content(a.text[i].String())
		c.Message.ToolCalls = append([]schema.ToolCall(nil), c.Message.ToolCalls...)
		for j := range c.Message.ToolCalls {
			c.Message.ToolCalls[j].Function.Arguments = a.args[i][j].String()
		}
		out.Choices[i] = c
	}
	return &out
}
