package schema

import (
	"github.com/vmihailenco/msgpack/v5"
)

// EncodeMsgpack writes the response by hand, the bytes the reflection
// codec wrote for its struct tags (see msgpackmap.go): every reply is
// encoded by a worker and decoded by a producer or the gateway.
func (r Response) EncodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(6 + count(r.Routing != nil))
	w.str("id", r.ID)
	w.str("object", r.Object)
	w.int64("created", r.Created)
	w.str("model", r.Model)
	w.key("choices")
	if w.err == nil {
		w.err = encodeChoices(e, r.Choices)
	}
	w.key("usage")
	w.set(r.Usage.encodeMsgpack(e))
	if r.Routing != nil {
		w.key("routing")
		w.set(r.Routing.encodeMsgpack(e))
	}
	return w.err
}

// DecodeMsgpack reads a response by hand (see EncodeMsgpack): unknown
// keys are skipped, and an error names the field it is in.
func (r *Response) DecodeMsgpack(d *msgpack.Decoder) error {
	var k keyScratch
	return r.decodeMsgpack(d, &k)
}

// decodeMsgpack is DecodeMsgpack reading keys into k.
func (r *Response) decodeMsgpack(d *msgpack.Decoder, k *keyScratch) error {
	*r = Response{}
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	for range n {
		key, err := decodeKey(d, k.top[:])
		if err != nil {
			return err
		}
		buf := k.inner[:]
		switch string(key) {
		case "id":
			r.ID, err = d.DecodeString()
		case "object":
			r.Object, err = decodeCommon(d, buf)
		case "created":
			r.Created, err = d.DecodeInt64()
		case "model":
			r.Model, err = d.DecodeString()
		case "choices":
			r.Choices, err = decodeChoices(d, buf)
		case "usage":
			err = r.Usage.decodeMsgpack(d, buf)
		case "routing":
			r.Routing, err = decodeRouting(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return fieldError(key, err)
		}
	}
	return nil
}

func encodeChoices(e *msgpack.Encoder, choices []Choice) error {
	if choices == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(choices)); err != nil {
		return err
	}
	for i := range choices {
		c := &choices[i]
		w := mapWriter{e: e}
		w.begin(3 + count(c.Logprobs != nil))
		w.int("index", c.Index)
		w.key("message")
		w.set(c.Message.EncodeMsgpack(e))
		w.str("finish_reason", c.FinishReason)
		if c.Logprobs != nil {
			w.key("logprobs")
			w.set(c.Logprobs.encodeMsgpack(e))
		}
		if w.err != nil {
			return w.err
		}
	}
	return nil
}

func decodeChoices(d *msgpack.Decoder, buf []byte) ([]Choice, error) {
	return decodeSlice(d, buf, (*Choice).decodeMsgpack)
}

func (c *Choice) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "index":
			c.Index, err = d.DecodeInt()
		case "message":
			err = c.Message.decodeMsgpack(d, buf)
		case "finish_reason":
			c.FinishReason, err = decodeCommon(d, buf)
		case "logprobs":
			c.Logprobs, err = decodeLogprobs(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (u *Usage) encodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(3)
	w.int("prompt_tokens", u.PromptTokens)
	w.int("completion_tokens", u.CompletionTokens)
	w.int("total_tokens", u.TotalTokens)
	return w.err
}

func (u *Usage) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	if n < 0 {
		*u = Usage{}
	}
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "prompt_tokens":
			u.PromptTokens, err = d.DecodeInt()
		case "completion_tokens":
			u.CompletionTokens, err = d.DecodeInt()
		case "total_tokens":
			u.TotalTokens, err = d.DecodeInt()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeUsagePtr reads usage, nil for nil.
func decodeUsagePtr(d *msgpack.Decoder, buf []byte) (*Usage, error) {
	if isNil, err := peekNil(d); isNil || err != nil {
		return nil, err
	}
	u := new(Usage)
	return u, u.decodeMsgpack(d, buf)
}

func (r *Routing) encodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(8 + count(r.Dispatcher != "", r.TTFTMs != 0, r.CostUSD != 0))
	w.str("tier", r.Tier)
	w.str("deployment", r.Deployment)
	w.str("worker", r.Worker)
	w.str("provider", r.Provider)
	w.str("model", r.Model)
	if r.Dispatcher != "" {
		w.str("dispatcher", r.Dispatcher)
	}
	w.int("attempts", r.Attempts)
	w.float("queue_ms", r.QueueMs)
	w.float("call_ms", r.CallMs)
	if r.TTFTMs != 0 {
		w.float("ttft_ms", r.TTFTMs)
	}
	if r.CostUSD != 0 {
		w.float("cost_usd", r.CostUSD)
	}
	return w.err
}

// decodeRouting reads a routing block, nil for nil.
func decodeRouting(d *msgpack.Decoder, buf []byte) (*Routing, error) {
	n, err := decodeMapHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	r := new(Routing)
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "tier":
			r.Tier, err = d.DecodeString()
		case "deployment":
			r.Deployment, err = d.DecodeString()
		case "worker":
			r.Worker, err = d.DecodeString()
		case "provider":
			r.Provider, err = d.DecodeString()
		case "model":
			r.Model, err = d.DecodeString()
		case "dispatcher":
			r.Dispatcher, err = d.DecodeString()
		case "attempts":
			r.Attempts, err = d.DecodeInt()
		case "queue_ms":
			r.QueueMs, err = d.DecodeFloat64()
		case "call_ms":
			r.CallMs, err = d.DecodeFloat64()
		case "ttft_ms":
			r.TTFTMs, err = d.DecodeFloat64()
		case "cost_usd":
			r.CostUSD, err = d.DecodeFloat64()
		default:
			err = d.Skip()
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (l *Logprobs) encodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(1)
	w.key("content")
	if w.err != nil {
		return w.err
	}
	if l.Content == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(l.Content)); err != nil {
		return err
	}
	for i := range l.Content {
		t := &l.Content[i]
		w.begin(3 + count(len(t.Bytes) > 0))
		w.str("token", t.Token)
		w.float("logprob", t.Logprob)
		if len(t.Bytes) > 0 {
			w.key("bytes")
			w.set(encodeInts(e, t.Bytes))
		}
		w.key("top_logprobs")
		if w.err != nil {
			return w.err
		}
		if t.TopLogprobs == nil {
			w.set(e.EncodeNil())
			continue
		}
		w.set(e.EncodeArrayLen(len(t.TopLogprobs)))
		for j := range t.TopLogprobs {
			p := &t.TopLogprobs[j]
			w.begin(2 + count(len(p.Bytes) > 0))
			w.str("token", p.Token)
			w.float("logprob", p.Logprob)
			if len(p.Bytes) > 0 {
				w.key("bytes")
				w.set(encodeInts(e, p.Bytes))
			}
		}
	}
	return w.err
}

// decodeLogprobs reads a choice's logprobs, nil for nil.
func decodeLogprobs(d *msgpack.Decoder, buf []byte) (*Logprobs, error) {
	n, err := decodeMapHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	l := new(Logprobs)
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "content":
			l.Content, err = decodeTokenLogprobs(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

func decodeTokenLogprobs(d *msgpack.Decoder, buf []byte) ([]TokenLogprob, error) {
	return decodeSlice(d, buf, (*TokenLogprob).decodeMsgpack)
}

func (t *TokenLogprob) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	m, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	for range m {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "token":
			t.Token, err = d.DecodeString()
		case "logprob":
			t.Logprob, err = d.DecodeFloat64()
		case "bytes":
			t.Bytes, err = decodeInts(d)
		case "top_logprobs":
			t.TopLogprobs, err = decodeTopLogprobs(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func decodeTopLogprobs(d *msgpack.Decoder, buf []byte) ([]TopLogprob, error) {
	return decodeSlice(d, buf, (*TopLogprob).decodeMsgpack)
}

func (p *TopLogprob) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	m, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	for range m {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "token":
			p.Token, err = d.DecodeString()
		case "logprob":
			p.Logprob, err = d.DecodeFloat64()
		case "bytes":
			p.Bytes, err = decodeInts(d)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}
