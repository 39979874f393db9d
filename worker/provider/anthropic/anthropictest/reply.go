package anthropictest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode"
)

// answer is what the fake replies to a valid request.
type answer struct {
	id, requestID, model string
	chunks               []string // the text, word by word
	tools                []toolUse
	stopReason           string
	stopSequence         *string
	input, output        int
}

func (a *answer) text() string { return strings.Join(a.chunks, "") }

// compose computes the reply to req: the configured or echoed text, cut
// at the first stop sequence, then at max_tokens words.
func (s *Server) compose(req *Request, requestID string) (*answer, *Failure) {
	text := s.cfg.Reply
	if text == "" {
		text = "echo: " + req.lastUser()
	}
	var tools []toolUse
	if s.cfg.Respond != nil {
		var f *Failure
		if text, tools, f = s.scripted(req, requestID); f != nil {
			return nil, f
		}
	}
	a := &answer{
		id:         "msg_fake" + strings.TrimPrefix(requestID, "req_fake"),
		requestID:  requestID,
		model:      req.Model,
		stopReason: "end_turn",
		input:      req.inputTokens(),
	}
	cut := -1
	for _, seq := range req.StopSequences {
		if i := strings.Index(text, seq); i >= 0 && (cut < 0 || i < cut) {
			cut, a.stopSequence = i, &seq
		}
	}
	if cut >= 0 {
		text, a.stopReason = text[:cut], "stop_sequence"
	}
	a.chunks = split(text)
	if len(tools) > 0 && a.stopReason == "end_turn" {
		a.tools, a.stopReason = tools, "tool_use"
	}
	if limit := *req.MaxTokens; len(a.chunks) > 0 && words(text) > limit {
		a.chunks = a.chunks[:limit]
		last := len(a.chunks) - 1
		a.chunks[last] = strings.TrimRightFunc(a.chunks[last], unicode.IsSpace)
		a.tools, a.stopReason, a.stopSequence = nil, "max_tokens", nil
	}
	if s.cfg.StopReason != "" {
		a.stopReason = s.cfg.StopReason
	}
	a.output = words(a.text())
	for _, t := range a.tools {
		a.output += words(string(t.input)) + 1
	}
	return a, nil
}

// split cuts text into words, each with the whitespace that follows it;
// leading whitespace goes with the first word.
func split(text string) []string {
	var out []string
	start, inWord, seen := 0, false, false
	for i, r := range text {
		space := unicode.IsSpace(r)
		if !space && !inWord && seen {
			out = append(out, text[start:i])
			start = i
		}
		inWord = !space
		seen = seen || !space
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

func (a *answer) usage(output int) map[string]int {
	return map[string]int{
		"input_tokens":                a.input,
		"output_tokens":               output,
		"cache_creation_input_tokens": 0,
		"cache_read_input_tokens":     0,
	}
}

// message is the Message object of the reply, content and stop included
// when full, empty as in message_start otherwise.
func (a *answer) message(full bool) map[string]any {
	m := map[string]any{
		"id":            a.id,
		"type":          "message",
		"role":          "assistant",
		"model":         a.model,
		"content":       []any{},
		"stop_reason":   nil,
		"stop_sequence": nil,
		"usage":         a.usage(1),
	}
	if full {
		content := []any{}
		if t := a.text(); t != "" {
			content = append(content, map[string]string{"type": "text", "text": t})
		}
		for _, t := range a.tools {
			content = append(content, map[string]any{"type": "tool_use", "id": t.id, "name": t.name, "input": t.input})
		}
		m["content"] = content
		m["stop_reason"], m["stop_sequence"], m["usage"] = a.stopReason, a.stopSequence, a.usage(a.output)
	}
	return m
}

// reply answers a non-streamed request, after Delay per word.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, a *answer) {
	for range a.chunks {
		if !s.wait(r) {
			s.aborted()
			return
		}
	}
	b, _ := json.Marshal(a.message(true))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", a.requestID)
	_, _ = w.Write(b)
}

// stream answers a streamed request with the API's event sequence.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, a *answer) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Request-Id", a.requestID)
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(event string, data any) bool {
		b, _ := json.Marshal(data)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return r.Context().Err() == nil
	}
	failAt := min(max(s.cfg.FailAfter, 0), len(a.chunks))
	fault := func(sent int) bool {
		if s.cfg.FailMidStream == NoFault || sent != failAt {
			return false
		}
		switch s.cfg.FailMidStream {
		case FaultCut:
			panic(http.ErrAbortHandler) // drops the connection, no terminating chunk
		case FaultEndless:
			words := a.chunks
			if len(words) == 0 {
				words = []string{"more"}
			}
			for k := 0; send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
				"delta": map[string]string{"type": "text_delta", "text": words[k%len(words)]}}); k++ {
			}
			s.aborted()
			return true
		}
		f := s.cfg.StreamError
		if f == nil {
			f = Overloaded()
		}
		var data any
		_ = json.Unmarshal(f.errorBody(a.requestID), &data)
		send("error", data)
		return true
	}
	textBlock := len(a.chunks) > 0 || len(a.tools) == 0
	ok := send("message_start", map[string]any{"type": "message_start", "message": a.message(false)})
	if textBlock {
		ok = ok && send("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]string{"type": "text", "text": ""}})
	}
	ok = ok && send("ping", map[string]string{"type": "ping"})
	for i, c := range a.chunks {
		if !ok {
			break
		}
		if fault(i) {
			return
		}
		ok = s.wait(r) && send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]string{"type": "text_delta", "text": c}})
	}
	if ok && fault(len(a.chunks)) {
		return
	}
	if textBlock {
		ok = ok && send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	}
	for k, t := range a.tools {
		index := k
		if textBlock {
			index++
		}
		ok = ok && send("content_block_start", map[string]any{"type": "content_block_start", "index": index,
			"content_block": map[string]any{"type": "tool_use", "id": t.id, "name": t.name, "input": map[string]any{}}})
		for _, frag := range fragments(string(t.input)) {
			ok = ok && send("content_block_delta", map[string]any{"type": "content_block_delta", "index": index,
				"delta": map[string]string{"type": "input_json_delta", "partial_json": frag}})
		}
		ok = ok && send("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
	}
	ok = ok && send("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": a.stopReason, "stop_sequence": a.stopSequence},
		"usage": map[string]int{"output_tokens": a.output}}) &&
		send("message_stop", map[string]string{"type": "message_stop"})
	if !ok {
		s.aborted()
	}
}

// fragmentRunes is the size of the input_json_delta pieces the fake cuts
// a tool's input into.
const fragmentRunes = 6

// fragments cuts a tool's input, compact JSON, into input_json_delta
// pieces at rune boundaries; an empty object is one empty piece, as the
// API sends it.
func fragments(input string) []string {
	if input == "{}" {
		return []string{""}
	}
	var out []string
	rs := []rune(input)
	for len(rs) > 0 {
		n := min(fragmentRunes, len(rs))
		out = append(out, string(rs[:n]))
		rs = rs[n:]
	}
	return out
}
