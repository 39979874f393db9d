package schema

import (
	"github.com/vmihailenco/msgpack/v5"
)

// EncodeMsgpack writes the request by hand, the bytes the reflection
// codec wrote for its struct tags (see msgpackmap.go): a job is encoded
// by every producer and the gateway, and reflection was a quarter of
// their CPU.
func (r Request) EncodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(1 + count(r.Model != "", r.MaxTokens != nil, r.Temperature != nil, r.TopP != nil,
		len(r.Stop) > 0, r.Stream, r.User != "", len(r.Metadata) > 0, len(r.Tags) > 0,
		r.MaxCompletionTokens != nil, len(r.Tools) > 0, r.ToolChoice != nil, r.ParallelToolCalls != nil,
		r.ResponseFormat != nil, r.Seed != nil, r.PresencePenalty != nil, r.FrequencyPenalty != nil,
		r.Logprobs, r.TopLogprobs != nil, r.N != nil, r.StreamOptions != nil, r.ReasoningEffort != "",
		len(r.Input) > 0, r.Dimensions != nil, r.EncodingFormat != ""))
	if r.Model != "" {
		w.str("model", r.Model)
	}
	w.key("messages")
	w.set(encodeMessages(e, r.Messages))
	if r.MaxTokens != nil {
		w.int("max_tokens", *r.MaxTokens)
	}
	if r.Temperature != nil {
		w.float("temperature", *r.Temperature)
	}
	if r.TopP != nil {
		w.float("top_p", *r.TopP)
	}
	if len(r.Stop) > 0 {
		w.strings("stop", r.Stop)
	}
	if r.Stream {
		w.bool("stream", true)
	}
	if r.User != "" {
		w.str("user", r.User)
	}
	if len(r.Metadata) > 0 {
		w.key("metadata")
		w.begin(len(r.Metadata))
		for k, v := range r.Metadata {
			w.str(k, v)
		}
	}
	if len(r.Tags) > 0 {
		w.strings("tags", r.Tags)
	}
	if r.MaxCompletionTokens != nil {
		w.int("max_completion_tokens", *r.MaxCompletionTokens)
	}
	if len(r.Tools) > 0 {
		w.key("tools")
		w.set(encodeTools(e, r.Tools))
	}
	if r.ToolChoice != nil {
		w.key("tool_choice")
		w.set(r.ToolChoice.EncodeMsgpack(e))
	}
	if r.ParallelToolCalls != nil {
		w.bool("parallel_tool_calls", *r.ParallelToolCalls)
	}
	if r.ResponseFormat != nil {
		w.key("response_format")
		w.set(r.ResponseFormat.encodeMsgpack(e))
	}
	if r.Seed != nil {
		w.int64("seed", *r.Seed)
	}
	if r.PresencePenalty != nil {
		w.float("presence_penalty", *r.PresencePenalty)
	}
	if r.FrequencyPenalty != nil {
		w.float("frequency_penalty", *r.FrequencyPenalty)
	}
	if r.Logprobs {
		w.bool("logprobs", true)
	}
	if r.TopLogprobs != nil {
		w.int("top_logprobs", *r.TopLogprobs)
	}
	if r.N != nil {
		w.int("n", *r.N)
	}
	if r.StreamOptions != nil {
		w.key("stream_options")
		w.set(r.StreamOptions.encodeMsgpack(e))
	}
	if r.ReasoningEffort != "" {
		w.str("reasoning_effort", r.ReasoningEffort)
	}
	if len(r.Input) > 0 {
		w.strings("input", r.Input)
	}
	if r.Dimensions != nil {
		w.int("dimensions", *r.Dimensions)
	}
	if r.EncodingFormat != "" {
		w.str("encoding_format", r.EncodingFormat)
	}
	return w.err
}

// encodeMessages writes messages; nil as nil.
func encodeMessages(e *msgpack.Encoder, msgs []Message) error {
	if msgs == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(msgs)); err != nil {
		return err
	}
	for i := range msgs {
		if err := msgs[i].EncodeMsgpack(e); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack reads a request by hand (see EncodeMsgpack): unknown keys
// are skipped, and an error names the field it is in.
func (r *Request) DecodeMsgpack(d *msgpack.Decoder) error {
	var k keyScratch
	return r.decodeMsgpack(d, &k)
}

// decodeMsgpack is DecodeMsgpack reading keys into k.
func (r *Request) decodeMsgpack(d *msgpack.Decoder, k *keyScratch) error {
	*r = Request{}
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	for range n {
		key, err := decodeKey(d, k.top[:])
		if err != nil {
			return err
		}
		if err := r.decodeField(d, key, k.inner[:]); err != nil {
			return fieldError(key, err)
		}
	}
	return nil
}

// decodeField reads the value of key, keys of the maps in it into buf.
func (r *Request) decodeField(d *msgpack.Decoder, key, buf []byte) error {
	var err error
	switch string(key) {
	case "model":
		r.Model, err = d.DecodeString()
	case "messages":
		r.Messages, err = decodeMessages(d, buf)
	case "max_tokens":
		r.MaxTokens, err = decodeIntPtr(d)
	case "temperature":
		r.Temperature, err = decodeFloatPtr(d)
	case "top_p":
		r.TopP, err = decodeFloatPtr(d)
	case "stop":
		err = r.Stop.DecodeMsgpack(d)
	case "stream":
		r.Stream, err = d.DecodeBool()
	case "user":
		r.User, err = d.DecodeString()
	case "metadata":
		err = r.Metadata.DecodeMsgpack(d)
	case "tags":
		err = r.Tags.DecodeMsgpack(d)
	case "max_completion_tokens":
		r.MaxCompletionTokens, err = decodeIntPtr(d)
	case "tools":
		r.Tools, err = decodeTools(d, buf)
	case "tool_choice":
		r.ToolChoice, err = decodeToolChoice(d)
	case "parallel_tool_calls":
		r.ParallelToolCalls, err = decodeBoolPtr(d)
	case "response_format":
		r.ResponseFormat, err = decodeResponseFormat(d, buf)
	case "seed":
		r.Seed, err = decodeInt64Ptr(d)
	case "presence_penalty":
		r.PresencePenalty, err = decodeFloatPtr(d)
	case "frequency_penalty":
		r.FrequencyPenalty, err = decodeFloatPtr(d)
	case "logprobs":
		r.Logprobs, err = d.DecodeBool()
	case "top_logprobs":
		r.TopLogprobs, err = decodeIntPtr(d)
	case "n":
		r.N, err = decodeIntPtr(d)
	case "stream_options":
		r.StreamOptions, err = decodeStreamOptions(d, buf)
	case "reasoning_effort":
		r.ReasoningEffort, err = d.DecodeString()
	case "input":
		err = r.Input.DecodeMsgpack(d)
	case "dimensions":
		r.Dimensions, err = decodeIntPtr(d)
	case "encoding_format":
		r.EncodingFormat, err = d.DecodeString()
	default:
		err = d.Skip()
	}
	return err
}

// decodeMessages reads messages: nil for nil, empty for an empty array.
func decodeMessages(d *msgpack.Decoder, buf []byte) ([]Message, error) {
	return decodeSlice(d, buf, (*Message).decodeMsgpack)
}

// decodeToolChoice reads a tool choice, nil for nil.
func decodeToolChoice(d *msgpack.Decoder) (*ToolChoice, error) {
	if isNil, err := peekNil(d); isNil || err != nil {
		return nil, err
	}
	t := new(ToolChoice)
	return t, t.DecodeMsgpack(d)
}
