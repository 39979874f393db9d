package schema

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Codec encodes and decodes wire bodies.
type Codec uint8

// The codecs llmq speaks. MsgPack is the default; a producer that sends
// Content-Type: application/json gets JSON back.
const (
	MsgPack Codec = iota
	JSON
)

// Content types naming the codecs in the Content-Type header.
const (
	ContentTypeMsgPack = "application/msgpack"
	ContentTypeJSON    = "application/json"
)

// CodecFor returns the codec a Content-Type header value names. Anything
// that is not JSON is msgpack, the default.
func CodecFor(contentType string) Codec {
	if len(contentType) >= len(ContentTypeJSON) && contentType[:len(ContentTypeJSON)] == ContentTypeJSON {
		return JSON
	}
	return MsgPack
}

// ContentType returns the Content-Type header value for c.
func (c Codec) ContentType() string {
	if c == JSON {
		return ContentTypeJSON
	}
	return ContentTypeMsgPack
}

func (c Codec) String() string {
	if c == JSON {
		return "json"
	}
	return "msgpack"
}

// Marshal encodes v.
func (c Codec) Marshal(v any) ([]byte, error) {
	if c == JSON {
		return json.Marshal(v)
	}
	return marshalMsgpack(v)
}

// hotMsgpack returns v as the hand-coded type it is (see msgpackmap.go),
// with the size of its encoding estimated; nil for other types and nil
// pointers, which go through msgpack's reflection.
func hotMsgpack(v any) (hot interface {
	msgpack.CustomEncoder
	decodeMsgpack(*msgpack.Decoder, *keyScratch) error
}, size int) {
	switch v := v.(type) {
	case *Request:
		if v != nil {
			return v, v.msgpackSize()
		}
	case *Response:
		if v != nil {
			return v, v.msgpackSize()
		}
	case *Chunk:
		if v != nil {
			return v, v.msgpackSize()
		}
	case *Heartbeat:
		if v != nil {
			return v, v.msgpackSize()
		}
	}
	return nil, 128
}

// marshalMsgpack is msgpack.Marshal calling the codec of a hot-path type
// directly, into a buffer of the size it takes, so that the buffer is
// allocated once rather than grown from 64 bytes.
func marshalMsgpack(v any) ([]byte, error) {
	hot, size := hotMsgpack(v)
	buf := bytes.NewBuffer(make([]byte, 0, size))
	enc := msgpack.GetEncoder()
	enc.Reset(buf)
	var err error
	if hot != nil {
		err = hot.EncodeMsgpack(enc)
	} else {
		err = enc.Encode(v)
	}
	msgpack.PutEncoder(enc)
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unmarshalMsgpack is msgpack.Unmarshal calling the codec of a hot-path
// type directly.
func unmarshalMsgpack(data []byte, v any) error {
	hot, _ := hotMsgpack(v)
	if hot == nil {
		return msgpack.Unmarshal(data, v)
	}
	// One allocation for the reader and the scratch for keys.
	s := new(struct {
		r bytes.Reader
		k keyScratch
	})
	s.r.Reset(data)
	dec := msgpack.GetDecoder()
	dec.UsePreallocateValues(true) // as msgpack.Unmarshal
	dec.Reset(&s.r)
	err := hot.decodeMsgpack(dec, &s.k)
	msgpack.PutDecoder(dec)
	return err
}

// Unmarshal decodes data into v. JSON bodies with fields of the wrong type,
// or trailing data, are errors. A msgpack body is checked first (see
// checkMsgpack) so that a few hostile bytes cannot make the decoder
// allocate without bound.
func (c Codec) Unmarshal(data []byte, v any) error {
	if c == JSON {
		return json.Unmarshal(data, v)
	}
	if err := checkMsgpack(data); err != nil {
		return err
	}
	return unmarshalMsgpack(data, v)
}

// DecodeRequest decodes and validates a job body. Every failure is a
// bad_request *Error whose message says what is wrong.
func DecodeRequest(c Codec, data []byte) (*Request, error) {
	return DecodeRequestLimits(c, data, Limits{})
}

// DecodeRequestLimits is DecodeRequest checking the request against l
// (Check) rather than the default limits.
func DecodeRequestLimits(c Codec, data []byte, l Limits) (*Request, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, NewError(CodeBadRequest, "empty body: want a chat-completions request")
	}
	req := new(Request)
	if err := c.Unmarshal(data, req); err != nil {
		return nil, Errorf(CodeBadRequest, "malformed %s body: %v", c, err)
	}
	if err := req.Check(l); err != nil {
		return nil, err
	}
	return req, nil
}

// DecodeReply decodes a reply body: a Response, or the error it carries.
// isError says whether the reply's headers marked it as an error.
func DecodeReply(c Codec, data []byte, isError bool) (*Response, error) {
	if isError {
		return nil, DecodeError(c, data)
	}
	resp := new(Response)
	if err := c.Unmarshal(data, resp); err != nil {
		return nil, fmt.Errorf("llmq: malformed reply: %w", err)
	}
	return resp, nil
}

// DecodeEmbeddingReply decodes an embedding job's reply: an
// EmbeddingResponse, or the error it carries.
func DecodeEmbeddingReply(c Codec, data []byte, isError bool) (*EmbeddingResponse, error) {
	if isError {
		return nil, DecodeError(c, data)
	}
	resp := new(EmbeddingResponse)
	if err := c.Unmarshal(data, resp); err != nil {
		return nil, fmt.Errorf("llmq: malformed reply: %w", err)
	}
	return resp, nil
}

// DecodeError decodes an error body. A body that cannot be read still
// yields an *Error (internal) describing the problem.
func DecodeError(c Codec, data []byte) *Error {
	var body ErrorBody
	if err := c.Unmarshal(data, &body); err != nil || body.Error == nil {
		return Errorf(CodeInternal, "malformed error reply (%d bytes)", len(data))
	}
	return body.Error
}
