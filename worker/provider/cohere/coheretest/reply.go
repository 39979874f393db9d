package coheretest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Answer is a scripted reply (see Config.Answers and Config.Respond):
// text, tool calls with the plan Cohere writes before them, or both. The
// fake makes only the calls the request allows: none without tools or
// with tool_choice NONE, only declared functions; with REQUIRED and no
// scripted call that fits, it calls the first function with "{}".
type Answer struct {
	// Content is the text; with no tool calls made, "" means Config.Reply
	// or the echo.
	Content   string
	ToolPlan  string
	ToolCalls []ToolCall
}

// ToolCall is a tool call of a scripted answer or of an assistant message
// received. An empty ID is generated, as Cohere makes them: the name and
// a random suffix.
type ToolCall struct {
	ID, Name, Arguments string
}

// callTokens is what a call's arguments count.
func callTokens(c ToolCall) int { return 1 + len(c.Arguments)/4 }

// answer is what the fake replies to one request.
type answer struct {
	id       string
	pieces   []string // one per token; they concatenate to the text
	plan     string
	calls    []ToolCall
	finish   string
	prompt   int
	logprobs bool
}

var word = regexp.MustCompile(`\s*\S+`)

func (s *Server) answer(req *request, prompt int) *answer {
	script := s.script(req)
	a := &answer{id: s.newID(), finish: "COMPLETE", prompt: prompt, logprobs: req.Logprobs}
	a.calls = s.toolCalls(req, script.ToolCalls)
	text := script.Content
	if len(a.calls) > 0 {
		a.plan, a.finish = script.ToolPlan, "TOOL_CALL"
	} else if text == "" {
		text = s.cfg.Reply
		if text == "" {
			last := ""
			for _, m := range req.Messages {
				if m.Role == "user" {
					last = m.Content
				}
			}
			text = "echo: " + last
		}
	}
	for _, stop := range req.Stop {
		if i := strings.Index(text, stop); stop != "" && i >= 0 {
			text, a.finish = text[:i], "STOP_SEQUENCE"
		}
	}
	a.pieces = word.FindAllString(text, -1)
	if req.MaxTokens > 0 && len(a.pieces) > req.MaxTokens {
		a.pieces, a.finish = a.pieces[:req.MaxTokens], "MAX_TOKENS"
	}
	return a
}

// toolCalls picks the scripted calls the request allows (see Answer).
func (s *Server) toolCalls(req *request, script []ToolCall) []ToolCall {
	if len(req.Tools) == 0 || req.ToolChoice == "NONE" {
		return nil
	}
	var out []ToolCall
	for _, c := range script {
		for _, t := range req.Tools {
			if t.Name == c.Name {
				out = append(out, c)
				break
			}
		}
	}
	if len(out) == 0 && req.ToolChoice == "REQUIRED" {
		out = []ToolCall{{Name: req.Tools[0].Name, Arguments: "{}"}}
	}
	for i := range out {
		if out[i].ID == "" {
			out[i].ID = fmt.Sprintf("%s_fake%06d", out[i].Name, s.seq.Add(1))
		}
	}
	return out
}

func (a *answer) text() string { return strings.Join(a.pieces, "") }

func (a *answer) outputTokens() int {
	n := len(a.pieces) + len(word.FindAllString(a.plan, -1))
	for _, c := range a.calls {
		n += callTokens(c)
	}
	return n
}

func (a *answer) usage() map[string]any {
	return map[string]any{
		"billed_units": map[string]any{"input_tokens": a.prompt, "output_tokens": a.outputTokens()},
		"tokens":       map[string]any{"input_tokens": a.prompt + TemplateTokens, "output_tokens": a.outputTokens()},
	}
}

// Logprob is the log probability the fake gives the token at position i.
func Logprob(i int) float64 { return -float64(i%5+1) / 8 }

// logprob is the logprobs item of the token at position i.
func logprob(piece string, i int) map[string]any {
	return map[string]any{"text": piece, "token_ids": []int{1000 + i}, "logprobs": []float64{Logprob(i)}}
}

func callObject(c ToolCall, args string) map[string]any {
	return map[string]any{"id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": args}}
}

// reply is a non-streamed answer.
func (a *answer) reply() map[string]any {
	msg := map[string]any{"role": "assistant"}
	if len(a.pieces) > 0 || len(a.calls) == 0 {
		msg["content"] = []map[string]any{{"type": "text", "text": a.text()}}
	}
	if len(a.calls) > 0 {
		calls := make([]map[string]any, len(a.calls))
		for i, c := range a.calls {
			calls[i] = callObject(c, c.Arguments)
		}
		msg["tool_calls"], msg["tool_plan"] = calls, a.plan
	}
	out := map[string]any{"id": a.id, "finish_reason": a.finish, "message": msg, "usage": a.usage()}
	if a.logprobs {
		lps := make([]map[string]any, len(a.pieces))
		for i, p := range a.pieces {
			lps[i] = logprob(p, i)
		}
		out["logprobs"] = lps
	}
	return out
}

// argumentPiece is the most bytes of a call's arguments one
// tool-call-delta carries.
const argumentPiece = 8

// fragments splits s into pieces of at most n bytes, never inside a rune.
func fragments(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		i := min(n, len(s))
		for i < len(s) && i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		if i == 0 {
			i = len(s)
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// stream sends a as server-sent events: message-start, the plan as
// tool-plan-delta events, the text as content-start, content-delta… and
// content-end, each call as tool-call-start (id, name, empty arguments),
// tool-call-delta (argument fragments) and tool-call-end, and
// message-end.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, a *answer) {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(typ string, v map[string]any) {
		v["type"] = typ
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	message := func(m map[string]any) map[string]any { return map[string]any{"message": m} }
	send("message-start", map[string]any{"id": a.id, "delta": message(map[string]any{
		"role": "assistant", "content": []any{}, "tool_plan": "", "tool_calls": []any{}, "citations": []any{}})})
	for _, p := range word.FindAllString(a.plan, -1) {
		send("tool-plan-delta", map[string]any{"delta": message(map[string]any{"tool_plan": p})})
	}
	if len(a.pieces) > 0 || len(a.calls) == 0 {
		send("content-start", map[string]any{"index": 0, "delta": message(map[string]any{
			"content": map[string]any{"type": "text", "text": ""}})})
		for i, p := range a.pieces {
			if s.cfg.FailMidStream != NoFault && i == s.cfg.FailAfter {
				s.breakStream(r, send)
				return
			}
			if !s.wait(r, s.cfg.Delay) {
				return
			}
			ev := map[string]any{"index": 0, "delta": message(map[string]any{"content": map[string]any{"text": p}})}
			if a.logprobs {
				ev["logprobs"] = logprob(p, i)
			}
			send("content-delta", ev)
		}
		if s.cfg.FailMidStream != NoFault {
			s.breakStream(r, send)
			return
		}
		send("content-end", map[string]any{"index": 0})
	}
	for j, c := range a.calls {
		send("tool-call-start", map[string]any{"index": j, "delta": message(map[string]any{"tool_calls": callObject(c, "")})})
		for _, frag := range fragments(c.Arguments, argumentPiece) {
			send("tool-call-delta", map[string]any{"index": j, "delta": message(map[string]any{
				"tool_calls": map[string]any{"function": map[string]any{"arguments": frag}}})})
		}
		send("tool-call-end", map[string]any{"index": j})
	}
	send("message-end", map[string]any{"delta": map[string]any{"finish_reason": a.finish, "usage": a.usage()}})
}

func (s *Server) breakStream(r *http.Request, send func(string, map[string]any)) {
	switch s.cfg.FailMidStream {
	case FaultError:
		send("message-end", map[string]any{"delta": map[string]any{"finish_reason": "ERROR",
			"error": "internal server error during generation"}})
	case FaultHang:
		select {
		case <-r.Context().Done():
			s.clientGone()
		case <-s.closed:
		}
	case FaultCut:
		panic(http.ErrAbortHandler)
	}
}
