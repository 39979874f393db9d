package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxEvent bounds one event's size; a longer one is an error, so a broken
// upstream cannot grow a worker's memory without bound.
const MaxEvent = 1 << 20

// ErrTooLarge is wrapped by the error Next returns for an event or a line
// over MaxEvent bytes.
var ErrTooLarge = errors.New("sse: event too large")

// Event is one server-sent event.
type Event struct {
	// Name is the event field ("" when the server sent none).
	Name string
	// Data is the data fields joined by "\n".
	Data []byte
}

// Reader reads events from a stream.
type Reader struct {
	r    *bufio.Reader
	data bytes.Buffer
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 16<<10)}
}

// Next returns the next event. An event is complete only when a blank line
// ends it. Next returns io.EOF when the stream ends cleanly between events,
// and io.ErrUnexpectedEOF when it ends inside one (after a field line that
// no blank line has ended yet). An event or a line over MaxEvent bytes is
// an error wrapping ErrTooLarge. The returned Data is valid until the next
// call.
func (r *Reader) Next() (Event, error) {
	var ev Event
	r.data.Reset()
	seen := false    // an event or data field: a blank line dispatches
	pending := false // a field line not yet ended by a blank line
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF {
				if pending {
					return Event{}, io.ErrUnexpectedEOF
				}
				return Event{}, io.EOF
			}
			return ev, err
		}
		if len(line) == 0 {
			if seen {
				ev.Data = r.data.Bytes()
				return ev, nil
			}
			pending = false
			continue
		}
		if line[0] == ':' {
			continue // comment
		}
		pending = true
		field, value, _ := bytes.Cut(line, []byte(":"))
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "event":
			ev.Name = string(value)
			seen = true
		case "data":
			if r.data.Len() > 0 {
				r.data.WriteByte('\n')
			}
			if r.data.Len()+len(value) > MaxEvent {
				return ev, fmt.Errorf("%w: over %d bytes", ErrTooLarge, MaxEvent)
			}
			r.data.Write(value)
			seen = true
		}
	}
}

func (r *Reader) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.r.ReadLine()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return line, nil
			}
			return nil, err
		}
		if !isPrefix && line == nil {
			return chunk, nil
		}
		line = append(line, chunk...)
		if len(line) > MaxEvent {
			return nil, fmt.Errorf("%w: line over %d bytes", ErrTooLarge, MaxEvent)
		}
		if !isPrefix {
			return line, nil
		}
	}
}
