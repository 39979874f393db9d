package openaitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// answer is what the fake replies to one request.
type answer struct {
	id      string
	model   string
	created int64
	pieces  []string // one per token; they concatenate to the content
	finish  string
	prompt  int
	usage   bool // stream_options.include_usage
	azure   bool // Azure OpenAI's filter results
}

// word is one token: a word with the whitespace before it.
var word = regexp.MustCompile(`\s*\S+`)

// promptTokens counts the words of all messages.
func promptTokens(req *request) int {
	n := 0
	for _, m := range req.Messages {
		n += len(strings.Fields(m.Content))
	}
	return n
}

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
	a := &answer{
		id:      fmt.Sprintf("chatcmpl-fake%06d", s.seq.Add(1)),
		model:   req.Model,
		created: time.Now().Unix(),
		finish:  "stop",
		prompt:  prompt,
		usage:   req.IncludeUsage,
	}
	if s.cfg.Azure != nil {
		a.model, a.azure = s.cfg.Azure.model(), true
	}
	for _, stop := range req.Stop {
		if i := strings.Index(text, stop); stop != "" && i >= 0 {
			text = text[:i]
		}
	}
	a.pieces = word.FindAllString(text, -1)
	if limit := req.limit(); limit > 0 && len(a.pieces) > limit {
		a.pieces, a.finish = a.pieces[:limit], "length"
	}
	return a
}

func (a *answer) content() string { return strings.Join(a.pieces, "") }

func (a *answer) usageObject() map[string]any {
	return map[string]any{
		"prompt_tokens":             a.prompt,
		"completion_tokens":         len(a.pieces),
		"total_tokens":              a.prompt + len(a.pieces),
		"prompt_tokens_details":     map[string]int{"cached_tokens": 0, "audio_tokens": 0},
		"completion_tokens_details": map[string]int{"reasoning_tokens": 0, "audio_tokens": 0},
	}
}

// completion is the chat.completion object of a non-streamed answer.
func (a *answer) completion() map[string]any {
	c := a.openAICompletion()
	if a.azure {
		c["prompt_filter_results"] = azurePromptFilters()
		c["choices"].([]map[string]any)[0]["content_filter_results"] = azureFilters()
		delete(c, "service_tier")
	}
	return c
}

func (a *answer) openAICompletion() map[string]any {
	return map[string]any{
		"id":      a.id,
		"object":  "chat.completion",
		"created": a.created,
		"model":   a.model,
		"choices": []map[string]any{{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": a.content(), "refusal": nil, "annotations": []any{}},
			"logprobs":      nil,
			"finish_reason": a.finish,
		}},
		"usage":              a.usageObject(),
		"service_tier":       "default",
		"system_fingerprint": "fp_openaitest",
	}
}

// chunk is one chat.completion.chunk; with include_usage every chunk has
// "usage": null but the last.
func (a *answer) chunk(choices []map[string]any, usage map[string]any) map[string]any {
	c := map[string]any{
		"id":                 a.id,
		"object":             "chat.completion.chunk",
		"created":            a.created,
		"model":              a.model,
		"system_fingerprint": "fp_openaitest",
		"choices":            choices,
	}
	if a.usage {
		c["usage"] = usage
		if usage == nil {
			c["usage"] = nil
		}
	}
	return c
}

func choice(delta map[string]any, finish any) []map[string]any {
	return []map[string]any{{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}
}

// stream sends a as server-sent events.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, a *answer) {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	if a.azure {
		// Azure's first chunk: the prompt's filter results, no choices.
		send(map[string]any{"choices": []any{}, "created": 0, "id": "", "model": "", "object": "",
			"prompt_filter_results": azurePromptFilters()})
	}
	send(a.chunk(choice(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil), nil))
	if f := s.cfg.StreamFault; f != nil && (f.Endless || f.Trickle > 0) {
		s.endless(w, r, a, f, flusher)
		return
	}
	fault := s.cfg.StreamFault
	for i, p := range a.pieces {
		if fault != nil && i == fault.AfterChunks {
			s.breakStream(r, fault, send)
			return
		}
		if !s.wait(r, s.cfg.Delay) {
			return
		}
		send(a.chunk(choice(map[string]any{"content": p}, nil), nil))
	}
	if fault != nil {
		s.breakStream(r, fault, send)
		return
	}
	send(a.chunk(choice(map[string]any{}, a.finish), nil))
	if a.usage {
		send(a.chunk([]map[string]any{}, a.usageObject()))
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

// endless sends AfterChunks pieces, then never ends: every piece again and
// again, whole (Endless) or a byte at a time (Trickle), until the client
// goes away or the server closes.
func (s *Server) endless(w http.ResponseWriter, r *http.Request, a *answer, f *StreamFault, flusher http.Flusher) {
	pieces := a.pieces
	if len(pieces) == 0 {
		pieces = []string{"more"}
	}
	for i := 0; ; i++ {
		b, _ := json.Marshal(a.chunk(choice(map[string]any{"content": pieces[i%len(pieces)]}, nil), nil))
		event := []byte("data: " + string(b) + "\n\n")
		if i < f.AfterChunks || f.Trickle <= 0 {
			if !s.write(w, r, flusher, event) {
				return
			}
			continue
		}
		for j := range event {
			if !s.wait(r, f.Trickle) || !s.write(w, r, flusher, event[j:j+1]) {
				return
			}
		}
	}
}

// write sends b and flushes it; it reports false once the client is gone
// or the server closed.
func (s *Server) write(w http.ResponseWriter, r *http.Request, flusher http.Flusher, b []byte) bool {
	select {
	case <-r.Context().Done():
		s.clientGone()
		return false
	case <-s.closed:
		return false
	default:
	}
	if _, err := w.Write(b); err != nil {
		s.clientGone()
		return false
	}
	if flusher != nil {
		flusher.Flush()
	}
	return true
}

// breakStream applies a StreamFault.
func (s *Server) breakStream(r *http.Request, f *StreamFault, send func(any)) {
	switch {
	case f.Error != nil:
		send(map[string]any{"error": f.Error})
	case f.Hang:
		select {
		case <-r.Context().Done():
			s.clientGone()
		case <-s.closed:
		}
	case f.Abort:
		panic(http.ErrAbortHandler)
	}
}
