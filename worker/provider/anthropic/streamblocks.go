package anthropic

import (
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// Kinds of streamed content block.
const (
	blockOther = iota // thinking, server tools: not part of the message
	blockText
	blockTool // a tool call
	blockJSON // json_tool_call in JSON mode: the reply's content
)

// streamBlock is a content block being streamed.
type streamBlock struct {
	kind int
	call int // the tool call's index among the reply's calls
	args strings.Builder
	done bool
}

// streamState turns content block events into emitted pieces and the
// reply they add up to. Tool calls are numbered in the order their
// tool_use blocks start, not by block index.
type streamState struct {
	reply  reply
	emit   provider.Emit
	blocks map[int]*streamBlock
	order  []int // block indexes in the order they started
}

// start opens block index: a tool_use block emits its call's first piece
// (id, type, name).
func (s *streamState) start(index int, cb *replyBlock) error {
	if s.blocks == nil {
		s.blocks = make(map[int]*streamBlock)
	}
	b := &streamBlock{kind: blockOther}
	if cb != nil {
		switch {
		case cb.Type == "text":
			b.kind = blockText
		case cb.Type == "tool_use" && s.reply.jsonMode && cb.Name == JSONToolName:
			b.kind = blockJSON
		case cb.Type == "tool_use":
			b.kind, b.call = blockTool, len(s.reply.calls)
			s.reply.calls = append(s.reply.calls, schema.ToolCall{ID: cb.ID, Type: schema.ToolTypeFunction,
				Function: schema.FunctionCall{Name: cb.Name}})
		}
	}
	if _, seen := s.blocks[index]; !seen {
		s.order = append(s.order, index)
	}
	s.blocks[index] = b
	if b.kind == blockTool {
		c := s.reply.calls[b.call]
		return s.emit(toolPiece(b.call, schema.ToolCallDelta{ID: c.ID, Type: schema.ToolTypeFunction,
			Function: schema.FunctionCallDelta{Name: c.Function.Name}}))
	}
	return nil
}

// delta passes text on, and a fragment of a tool's input as an argument
// fragment (or, for the JSON tool, as text).
func (s *streamState) delta(ev *wireEvent) error {
	switch ev.Delta.Type {
	case "text_delta":
		if ev.Delta.Text == "" {
			return nil
		}
		s.reply.text.WriteString(ev.Delta.Text)
		return s.emit(provider.Text(ev.Delta.Text))
	case "input_json_delta":
		b := s.blocks[ev.Index]
		frag := ev.Delta.PartialJSON
		if b == nil || b.done || frag == "" {
			return nil
		}
		switch b.kind {
		case blockTool:
			b.args.WriteString(frag)
			return s.emit(toolPiece(b.call, schema.ToolCallDelta{Function: schema.FunctionCallDelta{Arguments: frag}}))
		case blockJSON:
			b.args.WriteString(frag)
			return s.emit(provider.Text(frag))
		}
	}
	return nil // thinking, signatures, citations: not part of the message
}

// stop closes block index: a tool's arguments, or the JSON content, are
// complete. A tool_use with no input fragments gets "{}", emitted too so
// that the pieces add up to the arguments returned.
func (s *streamState) stop(index int) error {
	b := s.blocks[index]
	if b == nil || b.done {
		return nil
	}
	b.done = true
	if b.kind != blockTool && b.kind != blockJSON {
		return nil
	}
	args := b.args.String()
	if strings.TrimSpace(args) == "" {
		args = "{}"
		var piece schema.ChunkChoice
		if b.kind == blockTool {
			piece = toolPiece(b.call, schema.ToolCallDelta{Function: schema.FunctionCallDelta{Arguments: args}})
		} else {
			piece = provider.Text(args)
		}
		if err := s.emit(piece); err != nil {
			return err
		}
	}
	if b.kind == blockTool {
		s.reply.calls[b.call].Function.Arguments = compactJSON([]byte(args))
		return nil
	}
	s.reply.text.WriteString(compactJSON([]byte(args)))
	s.reply.jsonUsed = true
	return nil
}

// stopAll closes the blocks a stream left open, in the order they began.
func (s *streamState) stopAll() error {
	for _, i := range s.order {
		if err := s.stop(i); err != nil {
			return err
		}
	}
	return nil
}

func toolPiece(call int, d schema.ToolCallDelta) schema.ChunkChoice {
	d.Index = call
	return schema.ChunkChoice{Delta: schema.Delta{ToolCalls: []schema.ToolCallDelta{d}}}
}
