package sse

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// MaxEvent bounds one event's size; a longer one is an error, so a broken
// upstream cannot grow a worker's memory without bound.
const MaxEvent = 1 << 20

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

// Next returns the next event. It returns io.EOF when the stream ends
// cleanly between events, and io.ErrUnexpectedEOF when it ends inside one.
// The returned Data is valid until the next call.
func (r *Reader) Next() (Event, error) {
	var ev Event
	r.data.Reset()
	seen := false
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && seen {
				ev.Data = r.data.Bytes()
				return ev, nil
			}
			if err == io.EOF {
				return ev, io.EOF
			}
			return ev, err
		}
		if len(line) == 0 {
			if seen {
				ev.Data = r.data.Bytes()
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			continue // comment
		}
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
				return ev, fmt.Errorf("sse: event over %d bytes", MaxEvent)
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
			return nil, fmt.Errorf("sse: line over %d bytes", MaxEvent)
		}
		if !isPrefix {
			return line, nil
		}
	}
}
