package geminitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// parseRequest decodes and checks a GenerateContentRequest body the way
// the API does. It returns the request, or the violations of malformed
// JSON (unknown names, wrong types), or a Failure for a well-formed body
// the API refuses (no contents, bad roles, empty parts, parameters out of
// range).
func parseRequest(body []byte, model string) (*Request, []violation, *Failure) {
	if !json.Valid(body) {
		return nil, []violation{{Description: "Invalid JSON payload received. Unexpected token."}}, nil
	}
	d := &decoder{}
	req := d.request(body)
	if len(d.vs) > 0 {
		return nil, d.vs, nil
	}
	if f := check(req, model); f != nil {
		return nil, nil, f
	}
	return req, nil, nil
}

// decoder walks the body, normalises field names to camelCase, records
// unknown names and type errors, and decodes what it can.
type decoder struct {
	vs []violation
}

func (d *decoder) unknown(name, at string) {
	desc := fmt.Sprintf("Invalid JSON payload received. Unknown name %q", name)
	if at != "" {
		desc += fmt.Sprintf(" at '%s'", at)
	}
	d.vs = append(d.vs, violation{Field: at, Description: desc + ": Cannot find field."})
}

func (d *decoder) invalid(at, typ string, raw json.RawMessage) {
	d.vs = append(d.vs, violation{Field: at,
		Description: fmt.Sprintf("Invalid value at '%s' (%s), %s", at, typ, bytes.TrimSpace(raw))})
}

// object reads raw as a JSON object whose field names (camelCase or
// snake_case) must be among allowed. It returns the fields by camelCase
// name, or nil when raw is not an object.
func (d *decoder) object(raw json.RawMessage, allowed []string, at, typ string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		d.invalid(at, typ, raw)
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		c := camel(k)
		if !slices.Contains(allowed, c) {
			d.unknown(k, at)
			continue
		}
		out[c] = v
	}
	return out
}

// field decodes m[name] into v; absent or null leaves v alone.
func (d *decoder) field(m map[string]json.RawMessage, name, at, typ string, v any) {
	raw, ok := m[name]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return
	}
	if err := json.Unmarshal(raw, v); err != nil {
		d.invalid(join(at, snake(name)), typ, raw)
	}
}

// list reads m[name] as a JSON array.
func (d *decoder) list(m map[string]json.RawMessage, name, at string) []json.RawMessage {
	var items []json.RawMessage
	d.field(m, name, at, "TYPE_MESSAGE", &items)
	return items
}

func (d *decoder) request(body []byte) *Request {
	m := d.object(body, requestFields(), "", "TYPE_MESSAGE")
	if m == nil {
		return nil
	}
	req := &Request{}
	for i, raw := range d.list(m, "contents", "") {
		c := d.content(raw, fmt.Sprintf("contents[%d]", i))
		req.Contents = append(req.Contents, c)
	}
	if raw, ok := m["systemInstruction"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		c := d.content(raw, "system_instruction")
		req.SystemInstruction = &c
	}
	if raw, ok := m["generationConfig"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		req.GenerationConfig = d.generationConfig(raw, "generation_config")
	}
	req.SafetySettings = m["safetySettings"]
	for i, raw := range d.list(m, "tools", "") {
		req.Tools = append(req.Tools, d.tool(raw, fmt.Sprintf("tools[%d]", i)))
	}
	if raw, ok := m["toolConfig"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		req.ToolConfig = d.toolConfig(raw, "tool_config")
	}
	d.field(m, "cachedContent", "", "TYPE_STRING", &req.CachedContent)
	return req
}

func (d *decoder) content(raw json.RawMessage, at string) Content {
	var c Content
	m := d.object(raw, contentFields(), at, "TYPE_MESSAGE")
	if m == nil {
		return c
	}
	d.field(m, "role", at, "TYPE_STRING", &c.Role)
	c.Parts = []Part{}
	for j, pr := range d.list(m, "parts", at) {
		pat := fmt.Sprintf("%s.parts[%d]", at, j)
		pm := d.object(pr, partFields(), pat, "TYPE_MESSAGE")
		var p Part
		if pm != nil {
			d.field(pm, "text", pat, "TYPE_STRING", &p.Text)
			d.field(pm, "thought", pat, "TYPE_BOOL", &p.Thought)
			d.field(pm, "thoughtSignature", pat, "TYPE_BYTES", &p.ThoughtSignature)
			p.InlineData = d.blob(pm, pat)
			p.FileData = pm["fileData"]
			p.FunctionCall = d.functionCall(pm, pat)
			p.FunctionResponse = d.functionResponse(pm, pat)
			p.ExecutableCode = pm["executableCode"]
			p.CodeExecutionResult = pm["codeExecutionResult"]
		}
		c.Parts = append(c.Parts, p)
	}
	return c
}

func (d *decoder) generationConfig(raw json.RawMessage, at string) *GenerationConfig {
	m := d.object(raw, generationConfigFields(), at, "TYPE_MESSAGE")
	if m == nil {
		return nil
	}
	g := &GenerationConfig{}
	d.field(m, "stopSequences", at, "TYPE_STRING", &g.StopSequences)
	d.field(m, "maxOutputTokens", at, "TYPE_INT32", &g.MaxOutputTokens)
	d.field(m, "temperature", at, "TYPE_FLOAT", &g.Temperature)
	d.field(m, "topP", at, "TYPE_FLOAT", &g.TopP)
	d.field(m, "topK", at, "TYPE_INT32", &g.TopK)
	d.field(m, "candidateCount", at, "TYPE_INT32", &g.CandidateCount)
	d.field(m, "seed", at, "TYPE_INT32", &g.Seed)
	d.field(m, "presencePenalty", at, "TYPE_FLOAT", &g.PresencePenalty)
	d.field(m, "frequencyPenalty", at, "TYPE_FLOAT", &g.FrequencyPenalty)
	d.field(m, "responseMimeType", at, "TYPE_STRING", &g.ResponseMimeType)
	d.field(m, "responseLogprobs", at, "TYPE_BOOL", &g.ResponseLogprobs)
	d.field(m, "logprobs", at, "TYPE_INT32", &g.Logprobs)
	if raw, ok := m["responseSchema"]; ok {
		d.schema(raw, join(at, "response_schema"), 0)
		g.ResponseSchema = raw
	}
	if raw, ok := m["thinkingConfig"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		tat := join(at, "thinking_config")
		if tm := d.object(raw, thinkingConfigFields(), tat, "TYPE_MESSAGE"); tm != nil {
			g.ThinkingConfig = &ThinkingConfig{}
			d.field(tm, "thinkingBudget", tat, "TYPE_INT32", &g.ThinkingConfig.ThinkingBudget)
			d.field(tm, "includeThoughts", tat, "TYPE_BOOL", &g.ThinkingConfig.IncludeThoughts)
			d.field(tm, "thinkingLevel", tat, "TYPE_ENUM", &g.ThinkingConfig.ThinkingLevel)
		}
	}
	return g
}

// check applies the API's rules to a well-formed request for model.
func check(req *Request, model string) *Failure {
	if len(req.Contents) == 0 {
		return InvalidArgument("* GenerateContentRequest.contents: contents is not specified\n")
	}
	for i, c := range req.Contents {
		// The API treats an absent role as "user"; anything else but
		// "user" and "model" (including "system") is refused.
		if c.Role != "" && c.Role != "user" && c.Role != "model" {
			return InvalidArgument("Please use a valid role: user, model.")
		}
		if f := checkParts(c.Parts, fmt.Sprintf("contents[%d]", i)); f != nil {
			return f
		}
	}
	if si := req.SystemInstruction; si != nil {
		if f := checkParts(si.Parts, "system_instruction"); f != nil {
			return f
		}
	}
	if g := req.GenerationConfig; g != nil {
		switch {
		case g.Temperature != nil && (*g.Temperature < 0 || *g.Temperature > 2):
			return InvalidArgument(fmt.Sprintf("* GenerateContentRequest.generation_config.temperature: "+
				"temperature must be in the range [0.0, 2.0], got %g\n", *g.Temperature))
		case g.TopP != nil && (*g.TopP < 0 || *g.TopP > 1):
			return InvalidArgument(fmt.Sprintf("* GenerateContentRequest.generation_config.top_p: "+
				"top_p must be in the range [0.0, 1.0], got %g\n", *g.TopP))
		case g.MaxOutputTokens != nil && *g.MaxOutputTokens < 0:
			return InvalidArgument("* GenerateContentRequest.generation_config.max_output_tokens: " +
				"max_output_tokens must be positive.\n")
		case len(g.StopSequences) > 5:
			return InvalidArgument("* GenerateContentRequest.generation_config.stop_sequences: " +
				"at most 5 stop sequences are allowed.\n")
		case g.CandidateCount != nil && (*g.CandidateCount < 0 || *g.CandidateCount > 8):
			return InvalidArgument("* GenerateContentRequest.generation_config.candidate_count: " +
				"candidate_count must be between 1 and 8.\n")
		}
		for i, s := range g.StopSequences {
			if s == "" {
				return InvalidArgument(fmt.Sprintf("* GenerateContentRequest.generation_config.stop_sequences[%d]: "+
					"stop sequence must not be empty.\n", i))
			}
		}
		if f := checkGeneration(g, model); f != nil {
			return f
		}
	}
	if f := checkTools(req); f != nil {
		return f
	}
	if f := checkTurns(req); f != nil {
		return f
	}
	return checkSignatures(req, model)
}

func checkParts(parts []Part, at string) *Failure {
	if len(parts) == 0 {
		return InvalidArgument(fmt.Sprintf("* GenerateContentRequest.%s.parts: contents.parts must not be empty.\n", at))
	}
	for j, p := range parts {
		if !p.hasData() {
			return InvalidArgument(fmt.Sprintf("* GenerateContentRequest.%s.parts[%d].data: "+
				"required oneof field 'data' must have one initialized field\n", at, j))
		}
	}
	return nil
}

// camel turns a snake_case field name into camelCase (the API accepts
// both); camelCase names pass unchanged.
func camel(s string) string {
	if !strings.Contains(s, "_") {
		return s
	}
	var b strings.Builder
	up := false
	for _, r := range s {
		switch {
		case r == '_':
			up = true
		case up:
			b.WriteRune(unicode.ToUpper(r))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// snake turns a camelCase field name into snake_case, as the API names
// fields in its messages.
func snake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func join(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}
