package schema

import (
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The hand-written msgpack codecs of the hot-path types (Request,
// Response, Chunk and what they hold) write the bytes the reflection
// codec of vmihailenco/msgpack wrote for the same struct tags — a map of
// the fields in declaration order, omitempty fields left out when empty,
// int as the smallest integer, int64 as a fixed int64, float64 as a
// double, a nil slice as nil — so that peers of either version read each
// other. Decoding reads maps by key, skips unknown keys, takes nil for a
// zero value, and accepts what the reflection decoder accepted for each
// field; a struct sent as a positional array (which llmq never sends) is
// refused. Lengths are trusted only up to maxPrealloc elements before the
// elements are read: a body reaching DecodeMsgpack through Codec.Unmarshal
// has been walked by checkMsgpack, and any other caller still cannot make
// a claimed length allocate.

// maxPrealloc caps the elements allocated for an array before they are
// read; longer arrays grow as they are read.
const maxPrealloc = 1024

// keyScratch is where map keys are read, so that matching them does not
// allocate: one per decoded message, shared by the values in it. top holds
// the outermost map's key, so that it still names the field when a value
// in it fails; inner is for the maps nested in it.
type keyScratch struct {
	top, inner [32]byte
}

// decodeKey reads a map key into buf. A key longer than buf is no key of
// ours: it is read past and returned empty. Like the reflection decoder,
// it takes a string, binary or nil key.
func decodeKey(d *msgpack.Decoder, buf []byte) ([]byte, error) {
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n <= 0 { // nil or ""
		return buf[:0], nil
	}
	if n > len(buf) {
		for n > 0 {
			m := min(n, len(buf))
			if err := d.ReadFull(buf[:m]); err != nil {
				return nil, err
			}
			n -= m
		}
		return buf[:0], nil
	}
	return buf[:n], d.ReadFull(buf[:n])
}

// fieldError names the field key in err, unless err already starts with
// it ("tags: …", "metadata.team: …").
func fieldError(key []byte, err error) error {
	msg := err.Error()
	if len(msg) > len(key) && msg[:len(key)] == string(key) && (msg[len(key)] == ':' || msg[len(key)] == '.' || msg[len(key)] == '[') {
		return err
	}
	return fmt.Errorf("%s: %w", key, err)
}

// errStructArray refuses a struct sent as an array of its fields, which
// the reflection decoder took and llmq never sends.
var errStructArray = errors.New("msgpack: got an array, want a map")

// decodeMapHeader reads a map's length: -1 for nil.
func decodeMapHeader(d *msgpack.Decoder) (int, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, err
	}
	switch {
	case isMsgpackArray(c):
		return 0, errStructArray
	case msgpcode.IsExt(c): // DecodeMapLen would read the map inside
		return 0, fmt.Errorf("msgpack: unexpected code=%x decoding map length", c)
	}
	return d.DecodeMapLen()
}

// decodeArrayHeader reads an array's length (-1 for nil) and the capacity
// to allocate for it.
func decodeArrayHeader(d *msgpack.Decoder) (n, capacity int, err error) {
	n, err = d.DecodeArrayLen()
	return n, min(max(n, 0), maxPrealloc), err
}

// decodeSlice reads an array of T, each element by dec (a method
// expression such as (*Choice).decodeMsgpack, so no closure is made):
// nil for nil, empty for an empty array, keys into buf.
func decodeSlice[T any](d *msgpack.Decoder, buf []byte, dec func(*T, *msgpack.Decoder, []byte) error) ([]T, error) {
	n, c, err := decodeArrayHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]T, 0, c)
	for range n {
		var zero T
		out = append(out, zero)
		if err := dec(&out[len(out)-1], d, buf); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// peekNil reports whether the next value is nil, and reads it if so.
func peekNil(d *msgpack.Decoder) (bool, error) {
	c, err := d.PeekCode()
	if err != nil {
		return false, err
	}
	if c != msgpcode.Nil {
		return false, nil
	}
	return true, d.DecodeNil()
}

func decodeIntPtr(d *msgpack.Decoder) (*int, error) {
	if isNil, err := peekNil(d); isNil || err != nil {
		return nil, err
	}
	v, err := d.DecodeInt()
	return &v, err
}

func decodeInt64Ptr(d *msgpack.Decoder) (*int64, error) {
	if isNil, err := peekNil(d); isNil || err != nil {
		return nil, err
	}
	v, err := d.DecodeInt64()
	return &v, err
}

func decodeFloatPtr(d *msgpack.Decoder) (*float64, error) {
	if isNil, err := peekNil(d); isNil || err != nil {
		return nil, err
	}
	v, err := d.DecodeFloat64()
	return &v, err
}

func decodeBoolPtr(d *msgpack.Decoder) (*bool, error) {
	if isNil, err := peekNil(d); isNil || err != nil {
		return nil, err
	}
	v, err := d.DecodeBool()
	return &v, err
}

// decodeStrings reads an array of strings as the reflection decoder read
// a []string: nil for nil, empty for an empty array.
func decodeStrings(d *msgpack.Decoder) ([]string, error) {
	n, c, err := decodeArrayHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]string, 0, c)
	for range n {
		s, err := d.DecodeString()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// decodeInts reads an array of ints as the reflection decoder read an
// []int.
func decodeInts(d *msgpack.Decoder) ([]int, error) {
	n, c, err := decodeArrayHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]int, 0, c)
	for range n {
		v, err := d.DecodeInt()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// mapWriter writes a map's entries, keeping the first error.
type mapWriter struct {
	e   *msgpack.Encoder
	err error
}

// begin writes the map's header; n counts the entries to come.
func (w *mapWriter) begin(n int) {
	if w.err == nil {
		w.err = w.e.EncodeMapLen(n)
	}
}

func (w *mapWriter) key(k string) {
	if w.err == nil {
		w.err = w.e.EncodeString(k)
	}
}

// set keeps err if it is the first.
func (w *mapWriter) set(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *mapWriter) str(k, v string) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeString(v)
	}
}

func (w *mapWriter) int(k string, v int) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeInt(int64(v))
	}
}

// int64 writes v in 9 bytes, as the reflection encoder wrote an int64.
func (w *mapWriter) int64(k string, v int64) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeInt64(v)
	}
}

// uint64 writes v in 9 bytes, as the reflection encoder wrote a uint64.
func (w *mapWriter) uint64(k string, v uint64) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeUint64(v)
	}
}

func (w *mapWriter) float(k string, v float64) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeFloat64(v)
	}
}

func (w *mapWriter) bool(k string, v bool) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeBool(v)
	}
}

func (w *mapWriter) strings(k string, v []string) {
	w.key(k)
	if w.err == nil {
		w.err = encodeStrings(w.e, v)
	}
}

// encodeStrings writes v as the reflection encoder wrote a []string.
func encodeStrings(e *msgpack.Encoder, v []string) error {
	if v == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(v)); err != nil {
		return err
	}
	for _, s := range v {
		if err := e.EncodeString(s); err != nil {
			return err
		}
	}
	return nil
}

// encodeInts writes v as the reflection encoder wrote an []int.
func encodeInts(e *msgpack.Encoder, v []int) error {
	if v == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(v)); err != nil {
		return err
	}
	for _, n := range v {
		if err := e.EncodeInt(int64(n)); err != nil {
			return err
		}
	}
	return nil
}

// count returns how many of set are true: a map's entries.
func count(set ...bool) int {
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n
}

// decodeCommon reads a string that is often one of llmq's constants (a
// role, a finish reason, an object name, a tool type, a worker's state or
// mode): those come back
// without allocating. buf must hold 31 bytes, the longest short string.
func decodeCommon(d *msgpack.Decoder, buf []byte) (string, error) {
	c, err := d.PeekCode()
	if err != nil {
		return "", err
	}
	if !msgpcode.IsFixedString(c) {
		return d.DecodeString()
	}
	b, err := decodeKey(d, buf)
	if err != nil {
		return "", err
	}
	switch string(b) {
	case RoleSystem:
		return RoleSystem, nil
	case RoleDeveloper:
		return RoleDeveloper, nil
	case RoleUser:
		return RoleUser, nil
	case RoleAssistant:
		return RoleAssistant, nil
	case RoleTool:
		return RoleTool, nil
	case FinishStop:
		return FinishStop, nil
	case FinishLength:
		return FinishLength, nil
	case FinishContentFilter:
		return FinishContentFilter, nil
	case FinishToolCalls:
		return FinishToolCalls, nil
	case ObjectCompletion:
		return ObjectCompletion, nil
	case ObjectChunk:
		return ObjectChunk, nil
	case ToolTypeFunction:
		return ToolTypeFunction, nil
	case PartText:
		return PartText, nil
	case PartImageURL:
		return PartImageURL, nil
	case StateReady:
		return StateReady, nil
	case StateDraining:
		return StateDraining, nil
	case StateStopped:
		return StateStopped, nil
	case ModeEmbedding:
		return ModeEmbedding, nil
	}
	return string(b), nil
}

// decodeCommonPtr is decodeCommon for an optional string: nil for nil.
func decodeCommonPtr(d *msgpack.Decoder, buf []byte) (*string, error) {
	if isNil, err := peekNil(d); isNil || err != nil {
		return nil, err
	}
	v, err := decodeCommon(d, buf)
	return &v, err
}
