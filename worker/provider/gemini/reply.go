package gemini

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// reply accumulates a reply, whole or streamed: its id, model version and
// usage, and per candidate its text, function calls, logprobs and finish
// reason.
type reply struct {
	id, version string
	usage       *usageMetadata
	choices     []*choiceState // by candidate index
}

// choiceState is what one candidate said so far.
type choiceState struct {
	seen     bool
	text     strings.Builder
	calls    []schema.ToolCall
	logprobs []schema.TokenLogprob
	finish   string
}

// newReply expects up to n candidates (the request's n).
func newReply(n int) *reply {
	r := &reply{choices: make([]*choiceState, max(n, 1))}
	for i := range r.choices {
		r.choices[i] = &choiceState{}
	}
	return r
}

// add takes one response object — a whole reply or one stream event — and
// returns the pieces it adds, in order: per candidate its text (with its
// logprobs), then each function call whole, as the first and only piece of
// that tool call.
func (r *reply) add(resp *generateResponse) ([]schema.ChunkChoice, error) {
	if resp.ResponseID != "" && r.id == "" {
		r.id = resp.ResponseID
	}
	if resp.ModelVersion != "" {
		r.version = resp.ModelVersion
	}
	if resp.UsageMetadata != nil {
		r.usage = resp.UsageMetadata
	}
	var pieces []schema.ChunkChoice
	for ci := range resp.Candidates {
		c := &resp.Candidates[ci]
		if c.Index < 0 || c.Index >= len(r.choices) {
			return nil, schema.Errorf(schema.CodeProviderError, "%s: reply has candidate index %d, %d asked for", name, c.Index, len(r.choices))
		}
		st := r.choices[c.Index]
		st.seen = true
		var text strings.Builder
		var calls []schema.ToolCall
		if c.Content != nil {
			for _, p := range c.Content.Parts {
				switch {
				case p.Thought:
				case p.FunctionCall != nil:
					tc, err := r.toolCall(c.Index, len(st.calls)+len(calls), p.FunctionCall, p.ThoughtSignature)
					if err != nil {
						return nil, err
					}
					calls = append(calls, tc)
				default:
					text.WriteString(p.Text)
				}
			}
		}
		lp := logprobs(c.LogprobsResult)
		if text.Len() > 0 || lp != nil {
			st.text.WriteString(text.String())
			ch := schema.ChunkChoice{Index: c.Index, Delta: schema.Delta{Content: text.String()}}
			if lp != nil {
				st.logprobs = append(st.logprobs, lp.Content...)
				ch.Logprobs = lp
			}
			pieces = append(pieces, ch)
		}
		for _, tc := range calls {
			pieces = append(pieces, schema.ChunkChoice{Index: c.Index, Delta: schema.Delta{ToolCalls: []schema.ToolCallDelta{{
				Index: len(st.calls), ID: tc.ID, Type: schema.ToolTypeFunction,
				Function: schema.FunctionCallDelta{Name: tc.Function.Name, Arguments: tc.Function.Arguments},
			}}}})
			st.calls = append(st.calls, tc)
		}
		if c.FinishReason != "" {
			st.finish = c.FinishReason
		}
	}
	return pieces, nil
}

// toolCall maps function call k of candidate ci onto an OpenAI tool call:
// Gemini's id when it gives one, else a stable one derived from the reply
// id, the call's place, name and arguments (the same for a streamed and a
// whole reply), followed by the part's thought signature if any (see
// withSignature); arguments as compact JSON text.
func (r *reply) toolCall(ci, k int, fc *functionCall, signature string) (schema.ToolCall, error) {
	args := []byte("{}")
	if raw := bytes.TrimSpace(fc.Args); len(raw) > 0 && string(raw) != "null" {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return schema.ToolCall{}, malformed("functionCall.args", err)
		}
		args = buf.Bytes()
	}
	id := fc.ID
	if id == "" {
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00", r.id, ci, k, fc.Name)
		h.Write(args)
		id = "call_" + hex.EncodeToString(h.Sum(nil)[:12])
	}
	return schema.ToolCall{ID: withSignature(id, signature), Type: schema.ToolTypeFunction,
		Function: schema.FunctionCall{Name: fc.Name, Arguments: string(args)}}, nil
}

// complete reports whether every candidate that came has finished, and
// one did.
func (r *reply) complete() bool {
	seen := false
	for _, st := range r.choices {
		if st.seen && st.finish == "" {
			return false
		}
		seen = seen || st.seen
	}
	return seen
}

// response assembles the OpenAI response: one choice per candidate that
// came, in index order.
func (r *reply) response(model string) *schema.Response {
	id, version := r.id, r.version
	if id == "" {
		id = provider.NewID()
	}
	if version == "" {
		version = model
	}
	out := &schema.Response{ID: id, Model: version, Usage: usage(r.usage)}
	for i, st := range r.choices {
		if !st.seen {
			continue
		}
		c := schema.Choice{
			Index:        i,
			Message:      schema.Message{Role: schema.RoleAssistant, Content: schema.Content(st.text.String()), ToolCalls: st.calls},
			FinishReason: finishReason(st.finish),
		}
		// Gemini ends a turn of function calls with STOP.
		if len(st.calls) > 0 && c.FinishReason == schema.FinishStop {
			c.FinishReason = schema.FinishToolCalls
		}
		if st.logprobs != nil {
			c.Logprobs = &schema.Logprobs{Content: st.logprobs}
		}
		out.Choices = append(out.Choices, c)
	}
	return out
}

// logprobs maps a candidate's logprobsResult onto OpenAI's logprobs: per
// chosen token its log probability and, at the same step, the most likely
// tokens. Nil when there is none.
func logprobs(lr *logprobsResult) *schema.Logprobs {
	if lr == nil || len(lr.ChosenCandidates) == 0 {
		return nil
	}
	out := &schema.Logprobs{Content: make([]schema.TokenLogprob, len(lr.ChosenCandidates))}
	for i, c := range lr.ChosenCandidates {
		t := schema.TokenLogprob{Token: c.Token, Logprob: c.LogProbability, Bytes: tokenBytes(c.Token),
			TopLogprobs: []schema.TopLogprob{}}
		if i < len(lr.TopCandidates) {
			for _, top := range lr.TopCandidates[i].Candidates {
				t.TopLogprobs = append(t.TopLogprobs, schema.TopLogprob{Token: top.Token, Logprob: top.LogProbability,
					Bytes: tokenBytes(top.Token)})
			}
		}
		out.Content[i] = t
	}
	return out
}

// tokenBytes is a token's UTF-8 bytes, as OpenAI gives them.
func tokenBytes(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i])
	}
	return out
}

// signatureSeparator joins a tool call id and the thought signature of its
// functionCall part, as LiteLLM does ("call_…__thought__<signature>"), so
// that the signature comes back with the call in the next request, where
// Gemini 3 requires it, whatever client carries the conversation.
const signatureSeparator = "__thought__"

// withSignature appends signature to id; an empty one leaves id alone.
func withSignature(id, signature string) string {
	if signature == "" {
		return id
	}
	return id + signatureSeparator + signature
}

// splitSignature returns the thought signature withSignature put in a tool
// call id, or "".
func splitSignature(id string) string {
	_, sig, _ := strings.Cut(id, signatureSeparator)
	return sig
}
