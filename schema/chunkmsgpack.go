package schema

import (
	"github.com/vmihailenco/msgpack/v5"
)

// EncodeMsgpack writes the chunk by hand, the bytes the reflection codec
// wrote for its struct tags (see msgpackmap.go): a streamed reply is a
// chunk per token.
func (c Chunk) EncodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(5 + count(c.Usage != nil, c.Routing != nil))
	w.str("id", c.ID)
	w.str("object", c.Object)
	w.int64("created", c.Created)
	w.str("model", c.Model)
	w.key("choices")
	if w.err == nil {
		w.err = encodeChunkChoices(e, c.Choices)
	}
	if c.Usage != nil {
		w.key("usage")
		w.set(c.Usage.encodeMsgpack(e))
	}
	if c.Routing != nil {
		w.key("routing")
		w.set(c.Routing.encodeMsgpack(e))
	}
	return w.err
}

// DecodeMsgpack reads a chunk by hand (see EncodeMsgpack): unknown keys
// are skipped, and an error names the field it is in.
func (c *Chunk) DecodeMsgpack(d *msgpack.Decoder) error {
	var k keyScratch
	return c.decodeMsgpack(d, &k)
}

// decodeMsgpack is DecodeMsgpack reading keys into k.
func (c *Chunk) decodeMsgpack(d *msgpack.Decoder, k *keyScratch) error {
	*c = Chunk{}
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
			c.ID, err = d.DecodeString()
		case "object":
			c.Object, err = decodeCommon(d, buf)
		case "created":
			c.Created, err = d.DecodeInt64()
		case "model":
			c.Model, err = d.DecodeString()
		case "choices":
			c.Choices, err = decodeChunkChoices(d, buf)
		case "usage":
			c.Usage, err = decodeUsagePtr(d, buf)
		case "routing":
			c.Routing, err = decodeRouting(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return fieldError(key, err)
		}
	}
	return nil
}

func encodeChunkChoices(e *msgpack.Encoder, choices []ChunkChoice) error {
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
		w.key("delta")
		w.set(c.Delta.encodeMsgpack(e))
		if c.FinishReason != nil {
			w.str("finish_reason", *c.FinishReason)
		} else {
			w.key("finish_reason")
			w.set(e.EncodeNil())
		}
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

func decodeChunkChoices(d *msgpack.Decoder, buf []byte) ([]ChunkChoice, error) {
	return decodeSlice(d, buf, (*ChunkChoice).decodeMsgpack)
}

func (c *ChunkChoice) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
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
		case "delta":
			err = c.Delta.decodeMsgpack(d, buf)
		case "finish_reason":
			c.FinishReason, err = decodeCommonPtr(d, buf)
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

func (t *Delta) encodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(count(t.Role != "", t.Content != "", len(t.ToolCalls) > 0))
	if t.Role != "" {
		w.str("role", t.Role)
	}
	if t.Content != "" {
		w.str("content", t.Content)
	}
	if len(t.ToolCalls) == 0 {
		return w.err
	}
	w.key("tool_calls")
	w.set(e.EncodeArrayLen(len(t.ToolCalls)))
	for i := range t.ToolCalls {
		c := &t.ToolCalls[i]
		w.begin(2 + count(c.ID != "", c.Type != ""))
		w.int("index", c.Index)
		if c.ID != "" {
			w.str("id", c.ID)
		}
		if c.Type != "" {
			w.str("type", c.Type)
		}
		w.key("function")
		w.begin(1 + count(c.Function.Name != ""))
		if c.Function.Name != "" {
			w.str("name", c.Function.Name)
		}
		w.str("arguments", c.Function.Arguments)
	}
	return w.err
}

func (t *Delta) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	if n < 0 {
		*t = Delta{}
	}
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "role":
			t.Role, err = decodeCommon(d, buf)
		case "content":
			t.Content, err = d.DecodeString()
		case "tool_calls":
			t.ToolCalls, err = decodeToolCallDeltas(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func decodeToolCallDeltas(d *msgpack.Decoder, buf []byte) ([]ToolCallDelta, error) {
	return decodeSlice(d, buf, (*ToolCallDelta).decodeMsgpack)
}

func (t *ToolCallDelta) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
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
		case "index":
			t.Index, err = d.DecodeInt()
		case "id":
			t.ID, err = d.DecodeString()
		case "type":
			t.Type, err = decodeCommon(d, buf)
		case "function":
			err = t.Function.decodeMsgpack(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *FunctionCallDelta) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	if n < 0 {
		*f = FunctionCallDelta{}
	}
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "name":
			f.Name, err = d.DecodeString()
		case "arguments":
			f.Arguments, err = d.DecodeString()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}
