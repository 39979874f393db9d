package schema

import (
	"encoding/binary"
	"fmt"

	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// maxMsgpackDepth bounds the nesting of a msgpack body, as encoding/json
// bounds JSON's.
const maxMsgpackDepth = 10000

// checkMsgpack walks the first msgpack value of data without allocating
// for it, and refuses a value that is truncated, uses the reserved code
// 0xc1, nests deeper than maxMsgpackDepth, or has an array or map that
// claims more elements than there are bytes left. The decoder allocates
// a slice of the claimed length up front (its own allocation limit does
// not apply), so without this check a few bytes could make it allocate
// gigabytes.
func checkMsgpack(data []byte) error {
	pos := 0
	need := func(n uint64) error {
		if n > uint64(len(data)-pos) {
			return fmt.Errorf("msgpack: %d bytes needed at offset %d, %d left", n, pos, len(data)-pos)
		}
		return nil
	}
	// uint reads a big-endian length of size bytes.
	uint := func(size int) (uint64, error) {
		if err := need(uint64(size)); err != nil {
			return 0, err
		}
		var n uint64
		switch size {
		case 1:
			n = uint64(data[pos])
		case 2:
			n = uint64(binary.BigEndian.Uint16(data[pos:]))
		case 4:
			n = uint64(binary.BigEndian.Uint32(data[pos:]))
		}
		pos += size
		return n, nil
	}
	// skip steps over n payload bytes.
	skip := func(n uint64) error {
		if err := need(n); err != nil {
			return err
		}
		pos += int(n)
		return nil
	}
	// pending holds the values still to read, per open container: on
	// the stack while the body nests no deeper than 16.
	var stack [16]uint64
	pending := append(stack[:0], 1)
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		if err := need(1); err != nil {
			return err
		}
		c := data[pos]
		pos++
		var (
			children uint64 // values the container holds
			isCont   bool
			err      error
			n        uint64
		)
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixints, nil, bools
		case c >= 0x80 && c <= 0x8f:
			children, isCont = 2*uint64(c&0x0f), true
		case c >= 0x90 && c <= 0x9f:
			children, isCont = uint64(c&0x0f), true
		case c >= 0xa0 && c <= 0xbf:
			err = skip(uint64(c & 0x1f))
		case c == 0xc4 || c == 0xd9: // bin8, str8
			if n, err = uint(1); err == nil {
				err = skip(n)
			}
		case c == 0xc5 || c == 0xda: // bin16, str16
			if n, err = uint(2); err == nil {
				err = skip(n)
			}
		case c == 0xc6 || c == 0xdb: // bin32, str32
			if n, err = uint(4); err == nil {
				err = skip(n)
			}
		case c == 0xc7: // ext8: length, type, data
			if n, err = uint(1); err == nil {
				err = skip(n + 1)
			}
		case c == 0xc8: // ext16
			if n, err = uint(2); err == nil {
				err = skip(n + 1)
			}
		case c == 0xc9: // ext32
			if n, err = uint(4); err == nil {
				err = skip(n + 1)
			}
		case c == 0xca: // float32
			err = skip(4)
		case c == 0xcb: // float64
			err = skip(8)
		case c >= 0xcc && c <= 0xd3: // uint8..64, int8..64
			err = skip(1 << ((c - 0xcc) & 3))
		case c >= 0xd4 && c <= 0xd8: // fixext1..16: type, data
			err = skip(1 + 1<<(c-0xd4))
		case c == 0xdc: // array16
			children, err = uint(2)
			isCont = true
		case c == 0xdd: // array32
			children, err = uint(4)
			isCont = true
		case c == 0xde: // map16
			n, err = uint(2)
			children, isCont = 2*n, true
		case c == 0xdf: // map32
			n, err = uint(4)
			children, isCont = 2*n, true
		default: // 0xc1
			err = fmt.Errorf("msgpack: invalid code %#x at offset %d", c, pos-1)
		}
		if err != nil {
			return err
		}
		if !isCont || children == 0 {
			continue
		}
		// Every value takes at least one byte.
		if children > uint64(len(data)-pos) {
			return fmt.Errorf("msgpack: container of %d values at offset %d, only %d bytes left", children, pos, len(data)-pos)
		}
		if len(pending) >= maxMsgpackDepth {
			return fmt.Errorf("msgpack: nested deeper than %d", maxMsgpackDepth)
		}
		pending = append(pending, children)
	}
	return nil
}

func isMsgpackString(c byte) bool {
	return msgpcode.IsString(c)
}

func isMsgpackNil(c byte) bool { return c == msgpcode.Nil }

func isMsgpackArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}
