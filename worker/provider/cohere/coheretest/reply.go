package coheretest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// answer is what the fake replies to one request.
type answer struct {
	id     string
	pieces []string // one per token; they concatenate to the text
	finish string
	prompt int
}

var word = regexp.MustCompile(`\s*\S+`)

func (s *Server) answer(req *request, prompt int) *answer {
	text := s.cfg.Reply
	if text == "" {
		last := ""
		for _, m := range req.Messages {
			if m.Role == "user" {
				last = m.Content
			}
		}
		text = "echo: " + last
	}
	a := &answer{id: s.newID(), finish: "COMPLETE", prompt: prompt}
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

func (a *answer) text() string { return strings.Join(a.pieces, "") }

func (a *answer) usage() map[string]any {
	return map[string]any{
		"billed_units": map[string]any{"input_tokens": a.prompt, "output_tokens": len(a.pieces)},
		"tokens":       map[string]any{"input_tokens": a.prompt + TemplateTokens, "output_tokens": len(a.pieces)},
	}
}

// reply is a non-streamed answer.
func (a *answer) reply() map[string]any {
	return map[string]any{
		"id":            a.id,
		"finish_reason": a.finish,
		"message": map[string]any{
			"role":    "assistant",
			"content": []map[string]any{{"type": "text", "text": a.text()}},
		},
		"usage": a.usage(),
	}
}

// stream sends a as server-sent events.
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
	send("message-start", map[string]any{"id": a.id, "delta": map[string]any{"message": map[string]any{
		"role": "assistant", "content": []any{}, "tool_plan": "", "tool_calls": []any{}, "citations": []any{}}}})
	send("content-start", map[string]any{"index": 0, "delta": map[string]any{"message": map[string]any{
		"content": map[string]any{"type": "text", "text": ""}}}})
	for i, p := range a.pieces {
		if s.cfg.FailMidStream != NoFault && i == s.cfg.FailAfter {
			s.breakStream(r, send)
			return
		}
		if !s.wait(r, s.cfg.Delay) {
			return
		}
		send("content-delta", map[string]any{"index": 0, "delta": map[string]any{"message": map[string]any{
			"content": map[string]any{"text": p}}}})
	}
	if s.cfg.FailMidStream != NoFault {
		s.breakStream(r, send)
		return
	}
	send("content-end", map[string]any{"index": 0})
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
