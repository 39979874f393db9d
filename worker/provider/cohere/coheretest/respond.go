package coheretest

// Request is what a Config.Respond script sees of a valid request.
type Request struct {
	Model    string
	Messages []Message
	// Tools are the names of the declared functions, in order.
	Tools []string
	// ToolChoice is "", "REQUIRED" or "NONE".
	ToolChoice string
	// ResponseFormat is "", "text" or "json_object"; JSONSchema tells
	// whether the json_object carries a schema.
	ResponseFormat string
	JSONSchema     bool
	Stream         bool
}

// Message is a message of a Request: its text (images left out), the tool
// calls of an assistant message, the call a tool message answers.
type Message struct {
	Role       string
	Content    string
	ToolCalls  []ToolCall
	ToolCallID string
}

// view is what a Respond script sees of req.
func (req *request) view() *Request {
	v := &Request{Model: req.Model, ToolChoice: req.ToolChoice, ResponseFormat: req.ResponseFormat,
		JSONSchema: req.JSONSchema, Stream: req.Stream}
	for _, t := range req.Tools {
		v.Tools = append(v.Tools, t.Name)
	}
	for _, m := range req.Messages {
		v.Messages = append(v.Messages, Message{Role: m.Role, Content: m.Content,
			ToolCalls: append([]ToolCall(nil), m.ToolCalls...), ToolCallID: m.ToolCallID})
	}
	return v
}

// script is the scripted answer to req: Respond's, else the next of
// Answers, else none.
func (s *Server) script(req *request) Answer {
	if s.cfg.Respond != nil {
		return s.cfg.Respond(req.view())
	}
	if n := len(s.cfg.Answers); n > 0 {
		return s.cfg.Answers[min(int(s.calls.Add(1)-1), n-1)]
	}
	return Answer{}
}
