package schema

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Embedding encodings (Request.EncodingFormat).
const (
	EncodingFloat  = "float"
	EncodingBase64 = "base64"
)

// ObjectList and ObjectEmbedding name an embedding reply and its items.
const (
	ObjectList      = "list"
	ObjectEmbedding = "embedding"
)

// InputList holds an embedding job's texts. On the wire it is a string or
// an array of strings, as in OpenAI's API; token arrays are refused.
type InputList []string

const errInputShape = "input: want a string or an array of strings (token arrays are not supported)"

// UnmarshalJSON accepts a string or an array of strings.
func (in *InputList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*in = InputList{one}
		return nil
	}
	if string(b) == "null" {
		*in = nil
		return nil
	}
	many := InputList{} // an empty array is an embedding job with no input
	if err := json.Unmarshal(b, (*[]string)(&many)); err != nil {
		return errors.New(errInputShape)
	}
	*in = many
	return nil
}

// DecodeMsgpack accepts a string or an array of strings.
func (in *InputList) DecodeMsgpack(d *msgpack.Decoder) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case isMsgpackNil(c):
		*in = nil
		return d.DecodeNil()
	case isMsgpackString(c):
		s, err := d.DecodeString()
		*in = InputList{s}
		return err
	case isMsgpackArray(c):
		n, err := d.DecodeArrayLen()
		if err != nil {
			return err
		}
		out := make(InputList, 0, n) // n is bounded by checkMsgpack
		for range n {
			c, err := d.PeekCode()
			if err != nil {
				return err
			}
			if !isMsgpackString(c) {
				return errors.New(errInputShape)
			}
			s, err := d.DecodeString()
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		*in = out
		return nil
	}
	return errors.New(errInputShape)
}

// EmbeddingResponse is a finished embedding job: OpenAI's embeddings
// reply (object "list") plus llmq's routing block.
type EmbeddingResponse struct {
	Object  string      `json:"object" msgpack:"object"`
	Data    []Embedding `json:"data" msgpack:"data"`
	Model   string      `json:"model" msgpack:"model"`
	Usage   Usage       `json:"usage" msgpack:"usage"`
	Routing *Routing    `json:"routing,omitempty" msgpack:"routing,omitempty"`
}

// Embedding is the vector of input Index.
type Embedding struct {
	Object    string `json:"object" msgpack:"object"`
	Index     int    `json:"index" msgpack:"index"`
	Embedding Vector `json:"embedding" msgpack:"embedding"`
}

// Vector is an embedding. On the wire it is an array of numbers or, once
// Encode(EncodingBase64) ran, OpenAI's base64 of little-endian float32s.
type Vector struct {
	Floats []float32
	// Base64, when set, is what goes on the wire instead of Floats.
	Base64 string
}

// Encode sets the wire form: base64 for EncodingBase64, else floats.
func (v *Vector) Encode(format string) {
	if format != EncodingBase64 || v.Floats == nil {
		return
	}
	b := make([]byte, 4*len(v.Floats))
	for i, f := range v.Floats {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	v.Base64 = base64.StdEncoding.EncodeToString(b)
	v.Floats = nil
}

// MarshalJSON writes the floats, or the base64 string.
func (v Vector) MarshalJSON() ([]byte, error) {
	if v.Base64 != "" {
		return json.Marshal(v.Base64)
	}
	if v.Floats == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(v.Floats)
}

// UnmarshalJSON reads floats or a base64 string (decoded into Floats).
func (v *Vector) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return v.fromBase64(s)
	}
	*v = Vector{}
	return json.Unmarshal(b, &v.Floats)
}

// EncodeMsgpack writes the floats as float32s, or the base64 string.
func (v *Vector) EncodeMsgpack(e *msgpack.Encoder) error {
	if v.Base64 != "" {
		return e.EncodeString(v.Base64)
	}
	if err := e.EncodeArrayLen(len(v.Floats)); err != nil {
		return err
	}
	for _, f := range v.Floats {
		if err := e.EncodeFloat32(f); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack reads numbers or a base64 string (decoded into Floats).
func (v *Vector) DecodeMsgpack(d *msgpack.Decoder) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if isMsgpackString(c) {
		s, err := d.DecodeString()
		if err != nil {
			return err
		}
		return v.fromBase64(s)
	}
	*v = Vector{}
	return d.Decode(&v.Floats)
}

func (v *Vector) fromBase64(s string) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		return fmt.Errorf("embedding: base64 of float32s expected")
	}
	*v = Vector{Floats: make([]float32, len(b)/4)}
	for i := range v.Floats {
		v.Floats[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return nil
}
