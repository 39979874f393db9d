package schema

// The msgpackSize methods estimate an encoding's size from its strings,
// for Codec.Marshal: a little over is cheap, under costs a copy.

func (r Request) msgpackSize() int {
	n := 64 + len(r.Model) + len(r.User) + msgpackMessagesSize(r.Messages)
	for _, s := range r.Input {
		n += 5 + len(s)
	}
	if len(r.Tools) > 0 || r.ResponseFormat != nil || len(r.Metadata) > 0 {
		n += 512
	}
	return n
}

func msgpackMessagesSize(msgs []Message) int {
	n := 0
	for i := range msgs {
		n += msgpackMessageSize(&msgs[i])
	}
	return n
}

func msgpackMessageSize(m *Message) int {
	n := 24 + len(m.Role) + len(m.Content) + len(m.Name) + len(m.ToolCallID)
	for j := range m.Parts {
		n += 32 + len(m.Parts[j].Text)
		if u := m.Parts[j].ImageURL; u != nil {
			n += 16 + len(u.URL)
		}
	}
	for j := range m.ToolCalls {
		c := &m.ToolCalls[j]
		n += 48 + len(c.ID) + len(c.Function.Name) + len(c.Function.Arguments)
	}
	return n
}

func (r Response) msgpackSize() int {
	n := 112 + len(r.ID) + len(r.Model)
	for i := range r.Choices {
		n += 48 + msgpackMessageSize(&r.Choices[i].Message)
		if r.Choices[i].Logprobs != nil {
			n += 512
		}
	}
	return n + msgpackRoutingSize(r.Routing)
}

func (c Chunk) msgpackSize() int {
	n := 64 + len(c.ID) + len(c.Model)
	for i := range c.Choices {
		d := &c.Choices[i].Delta
		n += 64 + len(d.Role) + len(d.Content)
		for j := range d.ToolCalls {
			t := &d.ToolCalls[j]
			n += 64 + len(t.ID) + len(t.Function.Name) + len(t.Function.Arguments)
		}
		if c.Choices[i].Logprobs != nil {
			n += 512
		}
	}
	if c.Usage != nil {
		n += 64
	}
	return n + msgpackRoutingSize(c.Routing)
}

func msgpackRoutingSize(r *Routing) int {
	if r == nil {
		return 0
	}
	return 160 + len(r.Tier) + len(r.Deployment) + len(r.Worker) + len(r.Provider) + len(r.Model) + len(r.Dispatcher)
}

func (h Heartbeat) msgpackSize() int {
	n := 256 + len(h.Worker) + len(h.Tier) + len(h.Deployment) + len(h.Provider) + len(h.Model) + len(h.Host) +
		len(h.Subject) + len(h.State) + len(h.CoolingReason) + len(h.Mode)
	// An optional field: a key of at most 22 bytes and a header or a
	// value of at most 9.
	n += 32 * h.optionalFields()
	for k := range h.Received {
		n += 16 + len(k)
	}
	for k, seqs := range h.Jobs {
		n += 16 + len(k) + 9*len(seqs)
	}
	for k := range h.QueueAgeUs {
		n += 16 + len(k)
	}
	for _, t := range h.Tags {
		n += 8 + len(t)
	}
	for _, m := range h.Loaded {
		n += 8 + len(m)
	}
	return n
}
