package openaitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Answer is a scripted reply (see Config.Answers and Config.Respond):
// text, tool calls, or both. The fake makes only the calls the request
// allows: none without tools or with tool_choice "none", only declared
// functions, one call with parallel_tool_calls false, and the forced
// function's call with a named tool_choice (finish_reason "stop", as
// OpenAI answers then). With tool_choice "required" or named and no
// scripted call that fits, it calls the first (or the forced) function
// with "{}".
type Answer struct {
	// Content is the text; with no tool calls made, "" means Config.Reply
	// or the echo.
	Content   string
	ToolCalls []ToolCall
}

// ToolCall is a tool call of a scripted answer, or of an assistant
// message the fake received. An empty ID is generated.
type ToolCall struct {
	ID, Name, Arguments string
}

// answer is what the fake replies to one request.
type answer struct {
	id       string
	model    string
	created  int64
	choices  []choiceAnswer
	prompt   int
	usage    bool // stream_options.include_usage
	azure    bool // Azure OpenAI's filter results
	logprobs bool
	top      int
}

// choiceAnswer is one choice of an answer.
type choiceAnswer struct {
	pieces []string // one per token; they concatenate to the content
	calls  []ToolCall
	finish string
}

// word is one token: a word with the whitespace before it.
var word = regexp.MustCompile(`\s*\S+`)

// imageTokens is what one image counts in the prompt (OpenAI's price of a
// low-detail image).
const imageTokens = 85

// promptTokens counts the words of all messages and tool calls, 85 per
// image, and a token per four bytes of each tool declaration.
func promptTokens(req *request) int {
	n := 0
	for _, m := range req.Messages {
		n += len(strings.Fields(m.Content)) + imageTokens*m.Images
		for _, c := range m.ToolCalls {
			n += 1 + callTokens(c)
		}
	}
	for _, t := range req.Tools {
		n += 1 + len(t.Parameters)/4
	}
	return n
}

// callTokens is what a call's arguments count.
func callTokens(c ToolCall) int { return 1 + len(c.Arguments)/4 }

func (s *Server) answer(req *request, prompt int) *answer {
	script := s.script(req)
	calls := s.toolCalls(req, script.ToolCalls)
	text := script.Content
	if text == "" && len(calls) == 0 {
		text = s.defaultText(req)
	}
	a := &answer{
		id:       fmt.Sprintf("chatcmpl-fake%06d", s.seq.Add(1)),
		model:    req.Model,
		created:  time.Now().Unix(),
		prompt:   prompt,
		usage:    req.IncludeUsage,
		logprobs: req.Logprobs,
		top:      req.TopLogprobs,
	}
	if s.cfg.Azure != nil {
		a.model, a.azure = s.cfg.Azure.model(), true
	}
	for _, stop := range req.Stop {
		if i := strings.Index(text, stop); stop != "" && i >= 0 {
			text = text[:i]
		}
	}
	for k := range req.choices() {
		t := text
		if k > 0 {
			t = fmt.Sprintf("%s #%d", text, k)
		}
		c := choiceAnswer{pieces: word.FindAllString(t, -1), calls: calls, finish: "stop"}
		if len(calls) > 0 && !isNamed(req.ToolChoice) {
			c.finish = "tool_calls"
		}
		if limit := req.limit(); limit > 0 && len(c.pieces) > limit {
			c.pieces, c.finish = c.pieces[:limit], "length"
		}
		a.choices = append(a.choices, c)
	}
	return a
}

func (s *Server) defaultText(req *request) string {
	if s.cfg.Reply != "" {
		return s.cfg.Reply
	}
	last := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			last = m.Content
		}
	}
	return "echo: " + last
}

func isNamed(choice string) bool {
	switch choice {
	case "", "none", "auto", "required":
		return false
	}
	return true
}

// toolCalls picks the scripted calls the request allows (see Answer).
func (s *Server) toolCalls(req *request, script []ToolCall) []ToolCall {
	if len(req.Tools) == 0 || req.ToolChoice == "none" {
		return nil
	}
	declared := func(name string) bool {
		for _, t := range req.Tools {
			if t.Name == name {
				return true
			}
		}
		return false
	}
	var out []ToolCall
	for _, c := range script {
		if declared(c.Name) && (!isNamed(req.ToolChoice) || c.Name == req.ToolChoice) {
			out = append(out, c)
		}
	}
	if len(out) == 0 && req.ToolChoice == "required" {
		out = []ToolCall{{Name: req.Tools[0].Name, Arguments: "{}"}}
	}
	if len(out) == 0 && isNamed(req.ToolChoice) {
		out = []ToolCall{{Name: req.ToolChoice, Arguments: "{}"}}
	}
	if len(out) > 1 && (isNamed(req.ToolChoice) || (req.ParallelToolCalls != nil && !*req.ParallelToolCalls)) {
		out = out[:1]
	}
	for i := range out {
		if out[i].ID == "" {
			out[i].ID = fmt.Sprintf("call_fake%06d", s.seq.Add(1))
		}
	}
	return out
}

func (c *choiceAnswer) content() string { return strings.Join(c.pieces, "") }

func (a *answer) completionTokens() int {
	n := 0
	for _, c := range a.choices {
		n += len(c.pieces)
		for _, tc := range c.calls {
			n += callTokens(tc)
		}
	}
	return n
}

func (a *answer) usageObject() map[string]any {
	return map[string]any{
		"prompt_tokens":             a.prompt,
		"completion_tokens":         a.completionTokens(),
		"total_tokens":              a.prompt + a.completionTokens(),
		"prompt_tokens_details":     map[string]int{"cached_tokens": 0, "audio_tokens": 0},
		"completion_tokens_details": map[string]int{"reasoning_tokens": 0, "audio_tokens": 0},
	}
}

// completion is the chat.completion object of a non-streamed answer.
func (a *answer) completion() map[string]any {
	c := a.openAICompletion()
	if a.azure {
		c["prompt_filter_results"] = azurePromptFilters()
		for _, ch := range c["choices"].([]map[string]any) {
			ch["content_filter_results"] = azureFilters()
		}
		delete(c, "service_tier")
	}
	return c
}

func (a *answer) openAICompletion() map[string]any {
	choices := make([]map[string]any, len(a.choices))
	for k, ch := range a.choices {
		msg := map[string]any{"role": "assistant", "content": ch.content(), "refusal": nil, "annotations": []any{}}
		if len(ch.calls) > 0 {
			calls := make([]map[string]any, len(ch.calls))
			for j, tc := range ch.calls {
				calls[j] = map[string]any{"id": tc.ID, "type": "function",
					"function": map[string]any{"name": tc.Name, "arguments": tc.Arguments}}
			}
			msg["tool_calls"] = calls
			if len(ch.pieces) == 0 {
				msg["content"] = nil
			}
		}
		choices[k] = map[string]any{"index": k, "message": msg, "logprobs": a.logprobsOf(ch.pieces, 0), "finish_reason": ch.finish}
	}
	return map[string]any{
		"id":                 a.id,
		"object":             "chat.completion",
		"created":            a.created,
		"model":              a.model,
		"choices":            choices,
		"usage":              a.usageObject(),
		"service_tier":       "default",
		"system_fingerprint": "fp_openaitest",
	}
}

// logprobsOf is the logprobs object of pieces (the first at position
// from), or nil when the request did not ask for them. Values are
// deterministic: Logprob(position), and top_logprobs the token itself
// then "alt1", "alt2"… each one lower.
func (a *answer) logprobsOf(pieces []string, from int) any {
	if !a.logprobs {
		return nil
	}
	content := make([]map[string]any, len(pieces))
	for i, p := range pieces {
		lp := Logprob(from + i)
		top := make([]map[string]any, a.top)
		for j := range top {
			tok := p
			if j > 0 {
				tok = fmt.Sprintf("alt%d", j)
			}
			top[j] = map[string]any{"token": tok, "logprob": lp - float64(j), "bytes": tokenBytes(tok)}
		}
		content[i] = map[string]any{"token": p, "logprob": lp, "bytes": tokenBytes(p), "top_logprobs": top}
	}
	return map[string]any{"content": content, "refusal": nil}
}

// Logprob is the log probability the fake gives the token at position i.
func Logprob(i int) float64 { return -float64(i%5+1) / 8 }

func tokenBytes(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
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
	return choiceAt(0, delta, finish, nil)
}

func choiceAt(index int, delta map[string]any, finish, logprobs any) []map[string]any {
	return []map[string]any{{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}}
}

// argumentPiece is the most bytes of a call's arguments one chunk carries.
const argumentPiece = 8

// deltas are the content chunks of choice k, as OpenAI streams them: a
// chunk per token, then per tool call a chunk with its index, id, type
// and name and empty arguments, then chunks of argument fragments.
func (a *answer) deltas(k int) [][]map[string]any {
	ch := a.choices[k]
	var out [][]map[string]any
	for i, p := range ch.pieces {
		out = append(out, choiceAt(k, map[string]any{"content": p}, nil, a.logprobsOf([]string{p}, i)))
	}
	for j, tc := range ch.calls {
		out = append(out, choiceAt(k, map[string]any{"tool_calls": []map[string]any{{"index": j, "id": tc.ID, "type": "function",
			"function": map[string]any{"name": tc.Name, "arguments": ""}}}}, nil, nil))
		for _, frag := range fragments(tc.Arguments, argumentPiece) {
			out = append(out, choiceAt(k, map[string]any{"tool_calls": []map[string]any{{"index": j,
				"function": map[string]any{"arguments": frag}}}}, nil, nil))
		}
	}
	return out
}

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

// interleaved takes the content chunks of every choice in turn.
func (a *answer) interleaved() [][]map[string]any {
	per := make([][][]map[string]any, len(a.choices))
	for k := range a.choices {
		per[k] = a.deltas(k)
	}
	var out [][]map[string]any
	for i := 0; ; i++ {
		more := false
		for k := range per {
			if i < len(per[k]) {
				out = append(out, per[k][i])
				more = true
			}
		}
		if !more {
			return out
		}
	}
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
	for k := range a.choices {
		send(a.chunk(choiceAt(k, map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil, nil), nil))
	}
	if f := s.cfg.StreamFault; f != nil && (f.Endless || f.Trickle > 0) {
		s.endless(w, r, a, f, flusher)
		return
	}
	fault := s.cfg.StreamFault
	for i, d := range a.interleaved() {
		if fault != nil && i == fault.AfterChunks {
			s.breakStream(r, fault, send)
			return
		}
		if !s.wait(r, s.cfg.Delay) {
			return
		}
		send(a.chunk(d, nil))
	}
	if fault != nil {
		s.breakStream(r, fault, send)
		return
	}
	for k, ch := range a.choices {
		send(a.chunk(choiceAt(k, map[string]any{}, ch.finish, nil), nil))
	}
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
	pieces := a.choices[0].pieces
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
