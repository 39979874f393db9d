package sse_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/llmq/llmq/worker/provider/sse"
)

type event struct{ name, data string }

// readAll reads events until Next fails and returns them with that error.
func readAll(t *testing.T, r io.Reader) ([]event, error) {
	t.Helper()
	sr := sse.NewReader(r)
	var out []event
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("Next never failed")
		}
		ev, err := sr.Next()
		if err != nil {
			return out, err
		}
		out = append(out, event{ev.Name, string(ev.Data)})
	}
}

// readers wrap a stream the ways a network hands it over.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one byte at a time", iotest.OneByteReader},
	{"half reads", iotest.HalfReader},
	{"EOF with the last data", iotest.DataErrReader},
}

func TestReaderParsesEvents(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 40<<10) // longer than the reader's buffer
	tests := []struct {
		name    string
		in      string
		want    []event
		wantErr error
	}{
		{"empty stream", "", nil, io.EOF},
		{"data event", "data: hello\n\n", []event{{"", "hello"}}, io.EOF},
		{"event and data fields", "event: message_start\ndata: {\"a\":1}\n\n", []event{{"message_start", `{"a":1}`}}, io.EOF},
		{"data before event field", "data: x\nevent: ping\n\n", []event{{"ping", "x"}}, io.EOF},
		{"multi-line data joined with newline", "data: a\ndata: b\ndata: c\n\n", []event{{"", "a\nb\nc"}}, io.EOF},
		{"empty data line keeps its place", "data: a\ndata:\ndata: b\n\n", []event{{"", "a\n\nb"}}, io.EOF},
		{"comments ignored", ": keep-alive\n\n: another\ndata: x\n: inside\ndata: y\n\n", []event{{"", "x\ny"}}, io.EOF},
		{"CRLF line endings", "event: e\r\ndata: x\r\ndata: y\r\n\r\n", []event{{"e", "x\ny"}}, io.EOF},
		{"data without space", "data:x\n\n", []event{{"", "x"}}, io.EOF},
		{"only one space is stripped", "data:  x \n\n", []event{{"", " x "}}, io.EOF},
		{"field without colon", "data\n\n", []event{{"", ""}}, io.EOF},
		{"colon in value kept", "data: a:b: c\n\n", []event{{"", "a:b: c"}}, io.EOF},
		{"unknown fields ignored", "id: 7\nretry: 100\ndata: x\n\n", []event{{"", "x"}}, io.EOF},
		{"blank lines separate events", "data: 1\n\ndata: 2\n\n\n\nevent: e\ndata: 3\n\n", []event{{"", "1"}, {"", "2"}, {"e", "3"}}, io.EOF},
		{"event name does not carry over", "event: a\ndata: 1\n\ndata: 2\n\n", []event{{"a", "1"}, {"", "2"}}, io.EOF},
		{"OpenAI done marker", "data: {\"x\":1}\n\ndata: [DONE]\n\n", []event{{"", `{"x":1}`}, {"", "[DONE]"}}, io.EOF},
		{"line longer than the buffer", "data: " + big + "\n\n", []event{{"", big}}, io.EOF},
		{"EOF after trailing blank lines is clean", "data: a\n\n\n\n", []event{{"", "a"}}, io.EOF},
		{"EOF after a trailing comment is clean", "data: a\n\n: bye\n", []event{{"", "a"}}, io.EOF},
		{"EOF after an unterminated comment is clean", "data: a\n\n: bye", []event{{"", "a"}}, io.EOF},
		{"EOF inside an event without the blank line", "data: a\n", nil, io.ErrUnexpectedEOF},
		{"EOF inside an event mid-line", "data: a", nil, io.ErrUnexpectedEOF},
		{"EOF inside the second event", "data: a\n\ndata: b\ndata: c", []event{{"", "a"}}, io.ErrUnexpectedEOF},
		{"EOF after an event field only", "event: ping\n", nil, io.ErrUnexpectedEOF},
		{"EOF after an unknown field", "data: a\n\nid: 9\n", []event{{"", "a"}}, io.ErrUnexpectedEOF},
		{"EOF inside a CRLF event", "data: a\r\n", nil, io.ErrUnexpectedEOF},
	}
	for _, rd := range readers {
		for _, tt := range tests {
			t.Run(rd.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				got, err := readAll(t, rd.wrap(strings.NewReader(tt.in)))
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("final error = %v, want %v (events %q)", err, tt.wantErr, got)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("events = %q, want %q", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("event %d = %q, want %q", i, got[i], tt.want[i])
					}
				}
			})
		}
	}
}

func TestReaderKeepsReturningEOFAfterTheEnd(t *testing.T) {
	t.Parallel()
	r := sse.NewReader(strings.NewReader("data: a\n\n"))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("call %d: err = %v, want io.EOF itself", i, err)
		}
	}
}

func TestReaderRefusesOversizeEvents(t *testing.T) {
	t.Parallel()
	half := strings.Repeat("y", sse.MaxEvent/2)
	tests := []struct {
		name string
		in   string
	}{
		{"one line over MaxEvent", "data: " + strings.Repeat("x", sse.MaxEvent+1) + "\n\n"},
		{"lines adding up over MaxEvent", "data: " + half + "\ndata: " + half + "\ndata: z\n\n"},
		{"comment line over MaxEvent", ":" + strings.Repeat("c", sse.MaxEvent+10) + "\n\ndata: x\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := readAll(t, strings.NewReader(tt.in))
			if !errors.Is(err, sse.ErrTooLarge) {
				t.Fatalf("err = %v, want one wrapping sse.ErrTooLarge", err)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v also matches an EOF", err)
			}
		})
	}
	t.Run("exactly MaxEvent is accepted", func(t *testing.T) {
		t.Parallel()
		data := strings.Repeat("x", sse.MaxEvent-len("data: "))
		got, err := readAll(t, strings.NewReader("data: "+data+"\n\n"))
		if err != io.EOF || len(got) != 1 || got[0].data != data {
			t.Fatalf("got %d events, err %v", len(got), err)
		}
	})
}

func TestReaderReturnsReadErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	tests := []struct {
		name string
		in   string
		want []event
	}{
		{"between events", "data: a\n\n", []event{{"", "a"}}},
		{"inside an event", "data: a\n\ndata: b\n", []event{{"", "a"}}},
		{"mid-line", "data: a\n\ndata: b", []event{{"", "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readAll(t, io.MultiReader(strings.NewReader(tt.in), iotest.ErrReader(boom)))
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v, want %v", err, boom)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Fatalf("events = %q, want %q", got, tt.want)
			}
		})
	}
}
