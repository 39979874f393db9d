package geminitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode"
)

// answer is what the fake model says to one request.
type answer struct {
	id, model string
	pieces    []string // the reply, one word (with its trailing space) each
	finish    string
	prompt    int
	block     string
}

// answer computes the reply to req: Config.Reply or the echo, cut at the
// first stop sequence and at maxOutputTokens words.
func (s *Server) answer(model string, req *Request, prompt int) *answer {
	a := &answer{
		id:     fmt.Sprintf("fake-%d", s.nextID()),
		model:  s.cfg.ModelVersion,
		prompt: prompt,
		finish: "STOP",
		block:  s.cfg.BlockReason,
	}
	if a.model == "" {
		a.model = model
	}
	text := s.cfg.Reply
	if text == "" {
		text = "echo: " + lastUserText(req)
	}
	if g := req.GenerationConfig; g != nil {
		for _, stop := range g.StopSequences {
			if i := strings.Index(text, stop); i >= 0 {
				text = strings.TrimRightFunc(text[:i], unicode.IsSpace)
			}
		}
	}
	a.pieces = words(text)
	if g := req.GenerationConfig; g != nil && g.MaxOutputTokens != nil && *g.MaxOutputTokens > 0 &&
		len(a.pieces) > *g.MaxOutputTokens {
		a.pieces = a.pieces[:*g.MaxOutputTokens]
		last := len(a.pieces) - 1
		a.pieces[last] = strings.TrimRightFunc(a.pieces[last], unicode.IsSpace)
		a.finish = "MAX_TOKENS"
	}
	if s.cfg.FinishReason != "" {
		a.finish = s.cfg.FinishReason
	}
	return a
}

// whole is the non-streamed GenerateContentResponse.
func (a *answer) whole() response {
	if a.block != "" {
		return a.blocked()
	}
	text := strings.Join(a.pieces, "")
	return a.chunk(text, a.finish, len(a.pieces))
}

// blocked is the reply to a blocked prompt: feedback, no candidates.
func (a *answer) blocked() response {
	return response{
		PromptFeedback: &promptFeedback{BlockReason: a.block},
		UsageMetadata:  usageMetadata{PromptTokenCount: a.prompt, TotalTokenCount: a.prompt},
		ModelVersion:   a.model, ResponseID: a.id,
	}
}

// chunk is one response object carrying text; finish is "" except on the
// last; completion counts the words sent so far.
func (a *answer) chunk(text, finish string, completion int) response {
	return response{
		Candidates: []respCandidate{{
			Content:      respContent{Parts: []respPart{{Text: text}}, Role: "model"},
			FinishReason: finish,
			Index:        0,
		}},
		UsageMetadata: usageMetadata{
			PromptTokenCount:     a.prompt,
			CandidatesTokenCount: completion,
			TotalTokenCount:      a.prompt + completion,
		},
		ModelVersion: a.model,
		ResponseID:   a.id,
	}
}

// chunks splits the answer into stream events of n words; the last
// carries the finish reason and the final usage.
func (a *answer) chunks(n int) []response {
	if a.block != "" {
		return []response{a.blocked()}
	}
	var out []response
	sent := 0
	for sent < len(a.pieces) || len(out) == 0 {
		end := min(sent+n, len(a.pieces))
		text := strings.Join(a.pieces[sent:end], "")
		sent = end
		finish := ""
		if sent == len(a.pieces) {
			finish = a.finish
		}
		out = append(out, a.chunk(text, finish, sent))
	}
	return out
}

// stream writes the answer as the API streams: SSE events "data: {json}"
// separated by blank lines (CRLF), or, without alt=sse, one JSON array
// written element by element.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, a *answer, sse bool) {
	chunks := a.chunks(s.cfg.ChunkWords)
	mid := s.cfg.FailMidStream
	if mid != nil && mid.After >= len(chunks) {
		mid = &MidStream{After: len(chunks) - 1, Error: mid.Error, Clean: mid.Clean, Endless: mid.Endless}
	}
	rc := http.NewResponseController(w)
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	}
	w.WriteHeader(http.StatusOK)
	// The API sends the headers at once, before the first chunk.
	_ = rc.Flush()
	write := func(i int, v any) bool {
		b, _ := json.Marshal(v)
		var frame string
		switch {
		case sse:
			frame = "data: " + string(b) + "\r\n\r\n"
		case i == 0:
			frame = "[" + string(b)
		default:
			frame = "\r\n,\r\n" + string(b)
		}
		if _, err := w.Write([]byte(frame)); err != nil {
			s.clientGone()
			return false
		}
		if err := rc.Flush(); err != nil {
			s.clientGone()
			return false
		}
		return true
	}
	for i, c := range chunks {
		if mid != nil && i == mid.After {
			s.breakStream(a, mid, i, write)
			return
		}
		if !s.wait(r) || !write(i, c) {
			return
		}
	}
	if !sse {
		_, _ = w.Write([]byte("]"))
	}
}

// breakStream ends a stream the way mid says: an error event, a clean
// early end, a dropped connection, or never.
func (s *Server) breakStream(a *answer, mid *MidStream, i int, write func(int, any) bool) {
	switch {
	case mid.Endless:
		text := strings.Join(a.pieces, "")
		if text == "" {
			text = "more"
		}
		for k := i; write(k, a.chunk(text, "", k)); k++ {
		}
	case mid.Error != nil:
		write(i, mid.Error.body())
	case mid.Clean:
	default:
		// Abort the response: the connection closes without the chunked
		// terminator, so the client sees an unexpected EOF.
		panic(http.ErrAbortHandler)
	}
}

// lastUserText is the text of the last user content.
func lastUserText(req *Request) string {
	for i := len(req.Contents) - 1; i >= 0; i-- {
		c := req.Contents[i]
		if c.Role == "user" || c.Role == "" {
			return partsText(c.Parts, " ")
		}
	}
	return ""
}

func partsText(parts []Part, sep string) string {
	texts := make([]string, 0, len(parts))
	for _, p := range parts {
		if p.Text != "" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, sep)
}

// promptTokens counts the words of the system instruction and contents.
func promptTokens(req *Request) int {
	n := 0
	if req.SystemInstruction != nil {
		n += len(strings.Fields(partsText(req.SystemInstruction.Parts, " ")))
	}
	for _, c := range req.Contents {
		n += len(strings.Fields(partsText(c.Parts, " ")))
	}
	return n
}

// words splits s into pieces of one word each, whitespace attached to the
// word before it (leading whitespace to the first), so that the pieces
// concatenate back to s.
func words(s string) []string {
	var out []string
	start := 0
	inWord := false
	seenWord := false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if !space && !inWord {
			if seenWord {
				out = append(out, s[start:i])
				start = i
			}
			seenWord = true
		}
		inWord = !space
	}
	if seenWord {
		out = append(out, s[start:])
	}
	return out
}
