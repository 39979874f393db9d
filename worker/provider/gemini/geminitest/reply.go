package geminitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"
)

// answer is what the fake model says to one request.
type answer struct {
	id, model string
	cands     []candAnswer
	prompt    int
	block     string
	logprobs  *int // top logprobs per step, when the request asked for logprobs
}

// candAnswer is one candidate's reply: text (one word, with its trailing
// space, per piece) or function calls.
type candAnswer struct {
	pieces []string
	calls  []FunctionCall
	sigs   []string // the thought signature of each call
	finish string
}

// unit is one stream event's worth of a candidate: some words or one call.
type unit struct {
	text   []string
	call   *FunctionCall
	sig    string
	tokens int
}

// answer computes the reply to req: function calls when the model may and
// is scripted to (or must) call, else Config.Reply, a JSON value when JSON
// was asked for, or the echo; text cut at the first stop sequence and at
// maxOutputTokens words. Candidate i > 0 adds " (i+1)" to a text reply.
func (s *Server) answer(model string, req *Request, prompt int) *answer {
	a := &answer{
		id:     fmt.Sprintf("fake-%d", s.nextID()),
		model:  s.cfg.ModelVersion,
		prompt: prompt,
		block:  s.cfg.BlockReason,
	}
	if a.model == "" {
		a.model = model
	}
	g := req.GenerationConfig
	if g == nil {
		g = &GenerationConfig{}
	}
	if g.ResponseLogprobs != nil && *g.ResponseLogprobs {
		n := 0
		if g.Logprobs != nil {
			n = *g.Logprobs
		}
		a.logprobs = &n
	}
	count := 1
	if g.CandidateCount != nil && *g.CandidateCount > 1 {
		count = *g.CandidateCount
	}
	calls, sigs := s.calls(req)
	isJSON := g.ResponseMimeType == "application/json"
	for i := range count {
		c := candAnswer{finish: "STOP", calls: calls, sigs: sigs}
		if len(calls) == 0 {
			text := s.replyText(req, g)
			if i > 0 && !isJSON {
				text += fmt.Sprintf(" (%d)", i+1)
			}
			c.pieces, c.finish = cut(text, g)
		}
		if s.cfg.FinishReason != "" {
			c.finish = s.cfg.FinishReason
		}
		a.cands = append(a.cands, c)
	}
	return a
}

// replyText is the text the model answers: Config.Reply, else for JSON a
// value of the response schema (or {"echo": …}), else the echo.
func (s *Server) replyText(req *Request, g *GenerationConfig) string {
	if s.cfg.Reply != "" {
		return s.cfg.Reply
	}
	if g.ResponseMimeType == "application/json" {
		if g.ResponseSchema != nil {
			return string(instance(g.ResponseSchema, 0))
		}
		b, _ := json.Marshal(map[string]string{"echo": lastUserText(req)})
		return string(b)
	}
	return "echo: " + lastUserText(req)
}

// cut applies the stop sequences and maxOutputTokens to text; it returns
// its pieces and the finish reason.
func cut(text string, g *GenerationConfig) ([]string, string) {
	for _, stop := range g.StopSequences {
		if i := strings.Index(text, stop); i >= 0 {
			text = strings.TrimRightFunc(text[:i], unicode.IsSpace)
		}
	}
	pieces := words(text)
	if g.MaxOutputTokens != nil && *g.MaxOutputTokens > 0 && len(pieces) > *g.MaxOutputTokens {
		pieces = pieces[:*g.MaxOutputTokens]
		last := len(pieces) - 1
		pieces[last] = strings.TrimRightFunc(pieces[last], unicode.IsSpace)
		return pieces, "MAX_TOKENS"
	}
	return pieces, "STOP"
}

// calls decides the function calls the model makes: none without
// declarations or with mode NONE, or (mode AUTO) once the last turn holds
// function responses; else Config.Calls to declared (and, with ANY,
// allowed) functions; with ANY and no such script, a call of the first
// allowed function with no arguments, as the model must call one.
func (s *Server) calls(req *Request) ([]FunctionCall, []string) {
	var declared []string
	for _, t := range req.Tools {
		for _, f := range t.FunctionDeclarations {
			declared = append(declared, f.Name)
		}
	}
	if len(declared) == 0 {
		return nil, nil
	}
	mode, allowed := "AUTO", declared
	if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		if m := tc.FunctionCallingConfig.Mode; m != "" && m != "MODE_UNSPECIFIED" {
			mode = m
		}
		if len(tc.FunctionCallingConfig.AllowedFunctionNames) > 0 {
			allowed = tc.FunctionCallingConfig.AllowedFunctionNames
		}
	}
	if mode == "NONE" || (mode != "ANY" && lastTurnResponds(req)) {
		return nil, nil
	}
	var out []FunctionCall
	var sigs []string
	for _, c := range s.cfg.Calls {
		if slices.Contains(allowed, c.Name) {
			fc := FunctionCall{ID: c.ID, Name: c.Name, Args: json.RawMessage(c.Args)}
			if c.Args == "" {
				fc.Args = json.RawMessage("{}")
			}
			out = append(out, fc)
			sigs = append(sigs, c.ThoughtSignature)
		}
	}
	if len(out) == 0 && mode == "ANY" {
		return []FunctionCall{{Name: allowed[0], Args: json.RawMessage("{}")}}, []string{""}
	}
	return out, sigs
}

// lastTurnResponds reports whether the last content holds function
// responses.
func lastTurnResponds(req *Request) bool {
	last := req.Contents[len(req.Contents)-1]
	for _, p := range last.Parts {
		if p.FunctionResponse != nil {
			return true
		}
	}
	return false
}

// units splits candidate c into stream events of n words, then one per
// call.
func (c *candAnswer) units(n int) []unit {
	var out []unit
	for sent := 0; sent < len(c.pieces); sent += n {
		end := min(sent+n, len(c.pieces))
		out = append(out, unit{text: c.pieces[sent:end], tokens: end - sent})
	}
	for i := range c.calls {
		out = append(out, unit{call: &c.calls[i], sig: c.sigs[i], tokens: callTokens(&c.calls[i])})
	}
	if len(out) == 0 {
		out = append(out, unit{})
	}
	return out
}

// callTokens counts a call as its name and the words of its arguments.
func callTokens(fc *FunctionCall) int {
	return 1 + len(strings.Fields(string(fc.Args)))
}

// whole is the non-streamed GenerateContentResponse.
func (a *answer) whole() response {
	if a.block != "" {
		return a.blocked()
	}
	events := a.events(1 << 30)
	if len(events) == 1 {
		return events[0]
	}
	// Merge the events: one candidate each, with all its parts.
	out := events[len(events)-1]
	out.Candidates = nil
	for ci, c := range a.cands {
		rc := respCandidate{Content: respContent{Role: "model", Parts: []respPart{}}, FinishReason: c.finish, Index: ci}
		step := 0
		for _, u := range c.units(1 << 30) {
			rc.Content.Parts = append(rc.Content.Parts, u.part())
			rc.LogprobsResult = a.appendLogprobs(rc.LogprobsResult, u, &step)
		}
		out.Candidates = append(out.Candidates, rc)
	}
	return out
}

// blocked is the reply to a blocked prompt: feedback, no candidates.
func (a *answer) blocked() response {
	return response{
		PromptFeedback: &promptFeedback{BlockReason: a.block},
		UsageMetadata:  usageMetadata{PromptTokenCount: a.prompt, TotalTokenCount: a.prompt},
		ModelVersion:   a.model, ResponseID: a.id,
	}
}

func (u unit) part() respPart {
	if u.call != nil {
		return respPart{FunctionCall: u.call, ThoughtSignature: u.sig}
	}
	return respPart{Text: strings.Join(u.text, "")}
}

// appendLogprobs adds the logprobs of u's words to lr, when asked for:
// word k of the candidate gets log probability -(k%5+1)/10, and the top
// candidates are the chosen word then "alt1", "alt2"… one less each.
func (a *answer) appendLogprobs(lr *logprobsResult, u unit, step *int) *logprobsResult {
	if a.logprobs == nil || u.call != nil {
		return lr
	}
	if lr == nil {
		lr = &logprobsResult{TopCandidates: []topCandidates{}, ChosenCandidates: []logprobsCandidate{}}
	}
	for _, w := range u.text {
		lp := -float64(*step%5+1) / 10
		chosen := logprobsCandidate{Token: w, TokenID: 1000 + *step, LogProbability: lp}
		lr.ChosenCandidates = append(lr.ChosenCandidates, chosen)
		top := topCandidates{Candidates: []logprobsCandidate{}}
		for j := range *a.logprobs {
			c := chosen
			if j > 0 {
				c = logprobsCandidate{Token: fmt.Sprintf("alt%d", j), TokenID: j, LogProbability: lp - float64(j)}
			}
			top.Candidates = append(top.Candidates, c)
		}
		lr.TopCandidates = append(lr.TopCandidates, top)
		*step++
	}
	return lr
}

// events splits the answer into stream events of n words (or one call)
// per candidate; a candidate's last unit carries its finish reason, and
// each event the usage so far.
func (a *answer) events(n int) []response {
	if a.block != "" {
		return []response{a.blocked()}
	}
	units := make([][]unit, len(a.cands))
	steps := make([]int, len(a.cands))
	most := 0
	for i := range a.cands {
		units[i] = a.cands[i].units(n)
		most = max(most, len(units[i]))
	}
	completion := 0
	var out []response
	for e := range most {
		r := response{ModelVersion: a.model, ResponseID: a.id}
		for ci, us := range units {
			if e >= len(us) {
				continue
			}
			u := us[e]
			completion += u.tokens
			rc := respCandidate{Content: respContent{Role: "model", Parts: []respPart{u.part()}}, Index: ci}
			if e == len(us)-1 {
				rc.FinishReason = a.cands[ci].finish
			}
			rc.LogprobsResult = a.appendLogprobs(nil, u, &steps[ci])
			r.Candidates = append(r.Candidates, rc)
		}
		r.UsageMetadata = usageMetadata{PromptTokenCount: a.prompt, CandidatesTokenCount: completion,
			TotalTokenCount: a.prompt + completion}
		out = append(out, r)
	}
	return out
}

// stream writes the answer as the API streams: SSE events "data: {json}"
// separated by blank lines (CRLF), or, without alt=sse, one JSON array
// written element by element.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, a *answer, sse bool) {
	chunks := a.events(s.cfg.ChunkWords)
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
		more := response{ModelVersion: a.model, ResponseID: a.id, Candidates: []respCandidate{{
			Content: respContent{Role: "model", Parts: []respPart{{Text: "more "}}}}}}
		for k := i; write(k, more); k++ {
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
			if t := partsText(c.Parts, " "); t != "" {
				return t
			}
			var rs []string
			for _, p := range c.Parts {
				if p.FunctionResponse != nil {
					rs = append(rs, string(p.FunctionResponse.Response))
				}
			}
			return strings.Join(rs, " ")
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

// imageTokens is what the API counts for an image of up to 384×384
// pixels.
const imageTokens = 258

// promptTokens counts the words of the system instruction and contents,
// function calls and responses as their JSON's words, and 258 per inline
// image.
func promptTokens(req *Request) int {
	n := 0
	if req.SystemInstruction != nil {
		n += len(strings.Fields(partsText(req.SystemInstruction.Parts, " ")))
	}
	for _, c := range req.Contents {
		n += len(strings.Fields(partsText(c.Parts, " ")))
		for _, p := range c.Parts {
			switch {
			case p.InlineData != nil:
				n += imageTokens
			case p.FunctionCall != nil:
				n += callTokens(p.FunctionCall)
			case p.FunctionResponse != nil:
				n += 1 + len(strings.Fields(string(p.FunctionResponse.Response)))
			}
		}
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
