package ollamatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// errBusy is the admission failure when the queue is full.
var errBusy = errors.New(BusyMessage)

// chat answers POST /api/chat, checking the request in the order Ollama
// does: body, model, options, then scheduling, then the messages.
func (s *Server) chat(w http.ResponseWriter, r *http.Request, raw []byte) {
	start := time.Now()
	if len(bytes.TrimSpace(raw)) == 0 {
		writeError(w, http.StatusBadRequest, "missing request body")
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var req ChatRequest
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if strings.TrimSpace(req.Model) == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	if !s.has(req.Model) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", req.Model))
		return
	}
	if inList(s.cfg.EmbedModels, req.Model) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q does not support chat", req.Model))
		return
	}
	if len(req.Tools) > 0 && inList(s.cfg.NoTools, req.Model) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q does not support tools", req.Model))
		return
	}
	if think := string(bytes.TrimSpace(req.Think)); think != "" && think != "null" && think != "false" &&
		inList(s.cfg.NoThink, req.Model) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q does not support thinking", req.Model))
		return
	}
	if err := checkKeepAlive(req.KeepAlive); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if status, err := checkOptions(req.Options); err != nil {
		writeError(w, status, err.Error())
		return
	}
	if f := s.cfg.Fail; f != nil {
		writeFailure(w, f)
		return
	}

	var release func()
	var err error
	loadTook := time.Millisecond
	keepAlive := s.parseKeepAlive(req.KeepAlive)
	if s.hostMode() {
		release, loadTook, err = s.acquire(r.Context(), req.Model, keepAlive)
	} else {
		release, err = s.admit(r.Context())
	}
	if err != nil {
		if errors.Is(err, errBusy) {
			writeError(w, http.StatusServiceUnavailable, BusyMessage)
		}
		return
	}
	defer release()

	if len(req.Messages) == 0 {
		// Ollama loads the model and answers at once; with keep_alive 0
		// it unloads it.
		reason := "load"
		if keepAlive == 0 {
			reason = "unload"
		}
		writeJSON(w, http.StatusOK, ChatResponse{Model: req.Model, CreatedAt: time.Now().UTC(),
			Message: Message{Role: "assistant"}, Done: true, DoneReason: reason, LoadDuration: int64(loadTook)})
		return
	}
	if status, err := checkChat(&req); err != nil {
		writeError(w, status, err.Error())
		return
	}
	if hold := s.cfg.Hold; hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			s.update(func(st *Stats) { st.Disconnected++ })
			return
		case <-s.done:
			return
		}
	}

	tokens, calls, reason := s.generate(&req)
	if s.cfg.DoneReason != "" {
		reason = s.cfg.DoneReason
	}
	final := ChatResponse{
		Model:           req.Model,
		Message:         Message{Role: "assistant"},
		Done:            true,
		DoneReason:      reason,
		LoadDuration:    int64(max(loadTook, time.Millisecond)),
		PromptEvalCount: promptWords(req.Messages),
		EvalCount:       len(tokens) + len(calls),
	}
	if req.Streaming() {
		s.stream(w, r, &req, tokens, calls, final, start)
	} else {
		final.Message.ToolCalls = calls
		s.whole(w, r, tokens, final, start)
	}
}

// stream writes one NDJSON line per token, one per tool call, then the
// final line.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req *ChatRequest, tokens []string, calls []ToolCall, final ChatResponse, start time.Time) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher, _ := w.(http.Flusher)
	line := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := w.Write(append(b, '\n')); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	mid := s.cfg.FailMidStream
	if mid != nil && (mid.Endless || mid.Trickle > 0) {
		s.endless(w, r, req, tokens, mid, flusher)
		return
	}
	for i := 0; ; i++ {
		if mid != nil && i == mid.After {
			switch {
			case mid.Error != "":
				line(errorBody{Error: mid.Error})
			case !mid.EndCleanly:
				panic(http.ErrAbortHandler) // drops the connection mid-stream
			}
			return
		}
		if i == len(tokens) {
			break
		}
		if !s.wait(r.Context()) {
			return
		}
		chunk := ChatResponse{Model: req.Model, CreatedAt: time.Now().UTC(),
			Message: Message{Role: "assistant", Content: tokens[i]}}
		if !line(chunk) {
			s.update(func(st *Stats) { st.Disconnected++ })
			return
		}
	}
	if s.cfg.CallsInFinalLine {
		final.Message.ToolCalls, calls = calls, nil
	}
	for _, call := range calls {
		chunk := ChatResponse{Model: req.Model, CreatedAt: time.Now().UTC(),
			Message: Message{Role: "assistant", ToolCalls: []ToolCall{call}}}
		if !line(chunk) {
			s.update(func(st *Stats) { st.Disconnected++ })
			return
		}
	}
	final.CreatedAt = time.Now().UTC()
	final.setDurations(start)
	if line(final) {
		s.update(func(st *Stats) { st.Served++ })
	}
}

// endless sends mid.After token lines, then never ends: the tokens again
// and again, whole lines (Endless) or a byte at a time (Trickle), until the
// client goes away or the server closes.
func (s *Server) endless(w http.ResponseWriter, r *http.Request, req *ChatRequest, tokens []string, mid *MidStream, flusher http.Flusher) {
	if len(tokens) == 0 {
		tokens = []string{"more"}
	}
	write := func(b []byte) bool {
		select {
		case <-r.Context().Done():
			s.update(func(st *Stats) { st.Disconnected++ })
			return false
		case <-s.done:
			return false
		default:
		}
		if _, err := w.Write(b); err != nil {
			s.update(func(st *Stats) { st.Disconnected++ })
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for i := 0; ; i++ {
		b, _ := json.Marshal(ChatResponse{Model: req.Model, CreatedAt: time.Now().UTC(),
			Message: Message{Role: "assistant", Content: tokens[i%len(tokens)]}})
		b = append(b, '\n')
		if i < mid.After || mid.Trickle <= 0 {
			if !write(b) {
				return
			}
			continue
		}
		for j := range b {
			t := time.NewTimer(mid.Trickle)
			select {
			case <-t.C:
			case <-r.Context().Done():
			case <-s.done:
			}
			t.Stop()
			if !write(b[j : j+1]) {
				return
			}
		}
	}
}

// whole waits for every token, then writes the reply as one object.
func (s *Server) whole(w http.ResponseWriter, r *http.Request, tokens []string, final ChatResponse, start time.Time) {
	mid := s.cfg.FailMidStream
	for i := 0; ; i++ {
		if mid != nil && i == mid.After {
			switch {
			case mid.Error != "":
				writeError(w, http.StatusInternalServerError, mid.Error)
			case mid.EndCleanly:
				w.WriteHeader(http.StatusOK) // an empty 200 body
			default:
				panic(http.ErrAbortHandler)
			}
			return
		}
		if i == len(tokens) {
			break
		}
		if !s.wait(r.Context()) {
			return
		}
	}
	final.CreatedAt = time.Now().UTC()
	final.Message.Content = strings.Join(tokens, "")
	final.setDurations(start)
	writeJSON(w, http.StatusOK, final)
	s.update(func(st *Stats) { st.Served++ })
}

func (r *ChatResponse) setDurations(start time.Time) {
	total := time.Since(start)
	r.TotalDuration = int64(total)
	r.PromptEvalDuration = int64(total / 4)
	r.EvalDuration = int64(total / 2)
}

// wait waits Delay before a token. It reports false, and counts a
// disconnection, when the client goes away first.
func (s *Server) wait(ctx context.Context) bool {
	if s.cfg.Delay <= 0 {
		if ctx.Err() != nil {
			s.update(func(st *Stats) { st.Disconnected++ })
			return false
		}
		return true
	}
	t := time.NewTimer(s.cfg.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		s.update(func(st *Stats) { st.Disconnected++ })
		return false
	case <-s.done:
		return false
	}
}

// admit takes a generation slot, waiting in the queue when all are busy.
// It fails with errBusy when the queue is full too, or with the context's
// error when the client goes away while waiting.
func (s *Server) admit(ctx context.Context) (release func(), err error) {
	if s.slots == nil {
		s.update(func(st *Stats) { st.InFlight++ })
		return func() { s.update(func(st *Stats) { st.InFlight-- }) }, nil
	}
	// InFlight drops before the slot frees, so it never counts more chats
	// than there are slots, even while a queued chat takes the slot.
	release = func() {
		s.update(func(st *Stats) { st.InFlight-- })
		<-s.slots
	}
	s.mu.Lock()
	select {
	case s.slots <- struct{}{}:
		s.mu.Unlock()
		s.update(func(st *Stats) { st.InFlight++ })
		return release, nil
	default:
	}
	full := s.stats.Queued >= s.cfg.MaxQueue
	s.mu.Unlock()
	if full {
		s.update(func(st *Stats) { st.Busy++ })
		return nil, errBusy
	}
	s.update(func(st *Stats) { st.Queued++ })
	select {
	case s.slots <- struct{}{}:
		s.update(func(st *Stats) { st.Queued--; st.InFlight++ })
		return release, nil
	case <-ctx.Done():
		s.update(func(st *Stats) { st.Queued--; st.Disconnected++ })
		return nil, ctx.Err()
	case <-s.done:
		s.update(func(st *Stats) { st.Queued-- })
		return nil, errors.New("ollamatest: server closed")
	}
}

// generate returns the reply's tokens, tool calls (numbered) and
// done_reason, honouring the stop and num_predict options.
func (s *Server) generate(req *ChatRequest) ([]string, []ToolCall, string) {
	var text string
	var calls []ToolCall
	switch {
	case s.cfg.Answer != nil:
		a := s.cfg.Answer(*req)
		text = a.Content
		for i, c := range a.ToolCalls {
			c.Function.Index = i
			calls = append(calls, c)
		}
	case s.cfg.ReplyFunc != nil:
		text = s.cfg.ReplyFunc(*req)
	case s.cfg.Reply != "":
		text = s.cfg.Reply
	default:
		last := ""
		for _, m := range req.Messages {
			if m.Role == "user" {
				last = m.Content
			}
		}
		text = "echo: " + last
	}
	if stops, ok := req.Options["stop"].([]any); ok {
		for _, v := range stops {
			if stop, _ := v.(string); stop != "" {
				if i := strings.Index(text, stop); i >= 0 {
					text = text[:i]
				}
			}
		}
	}
	tokens := tokenize(text)
	if n, ok := req.Options["num_predict"].(float64); ok && n > 0 && len(tokens) > int(n) {
		return tokens[:int(n)], nil, "length"
	}
	return tokens, calls, "stop"
}

// tokenize splits text into words, each with the whitespace before it;
// trailing whitespace joins the last word. Joined, they give text back.
func tokenize(text string) []string {
	var tokens []string
	start, inWord := 0, false
	for i, r := range text {
		space := unicode.IsSpace(r)
		if space && inWord {
			tokens = append(tokens, text[start:i])
			start = i
		}
		inWord = !space
	}
	rest := text[start:]
	switch {
	case strings.TrimSpace(rest) != "":
		tokens = append(tokens, rest)
	case len(tokens) > 0:
		tokens[len(tokens)-1] += rest
	}
	return tokens
}

// promptWords counts the whitespace-separated words of all messages, and
// one for each image.
func promptWords(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		n += len(strings.Fields(m.Content)) + len(m.Images)
	}
	return n
}

// has reports whether the host has the model; a name without a tag means
// name:latest, and case does not matter.
func (s *Server) has(model string) bool {
	return inList(s.cfg.Models, model) || inList(s.cfg.EmbedModels, model)
}

// inList reports whether list names model, tags and case as has compares
// them.
func inList(list []string, model string) bool {
	want := strings.ToLower(displayName(model))
	for _, m := range list {
		if strings.ToLower(displayName(m)) == want {
			return true
		}
	}
	return false
}

// displayName is the name as /api/tags lists it: with a tag.
func displayName(name string) string {
	name = strings.TrimSpace(name)
	if !strings.Contains(name[strings.LastIndexByte(name, '/')+1:], ":") {
		name += ":latest"
	}
	return name
}

// checkOptions checks option types as Ollama does (a wrong type is a 500,
// the way Ollama reports it) and rejects unknown options (Ollama only logs
// them; the fake is stricter).
func checkOptions(opts map[string]any) (int, error) {
	for key, v := range opts {
		kind := optionKind(key)
		if kind == "" {
			return http.StatusBadRequest, fmt.Errorf("invalid option %q: Ollama ignores unknown options", key)
		}
		if v == nil {
			continue
		}
		ok := true
		switch kind {
		case "boolean":
			_, ok = v.(bool)
		case "float32":
			_, ok = v.(float64)
		case "integer":
			f, isNum := v.(float64)
			ok = isNum && f == math.Trunc(f)
		case "array":
			list, isList := v.([]any)
			if !isList {
				return http.StatusInternalServerError, fmt.Errorf("option %q must be of type array", key)
			}
			for _, e := range list {
				if _, isStr := e.(string); !isStr {
					return http.StatusInternalServerError, fmt.Errorf("option %q must be of an array of strings", key)
				}
			}
		}
		if !ok {
			return http.StatusInternalServerError, fmt.Errorf("option %q must be of type %s", key, kind)
		}
	}
	return 0, nil
}

// checkKeepAlive accepts what Ollama accepts: a duration string or a
// number of seconds.
func checkKeepAlive(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case float64:
		return nil
	case string:
		if _, err := time.ParseDuration(t); err != nil {
			return err
		}
		return nil
	}
	return errors.New("unsupported type for keep_alive")
}

// writeFailure writes a configured failure.
func writeFailure(w http.ResponseWriter, f *Failure) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.RawBody != "" {
		writeText(w, f.Status, f.RawBody)
		return
	}
	writeError(w, f.Status, f.Message)
}
