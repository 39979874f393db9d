package schema

import (
	"encoding/json"
	"reflect"
	"testing"
)

// referenceMessage decodes b as encoding/json does, through the wire
// struct: the behaviour Message.UnmarshalJSON must keep.
func referenceMessage(b []byte) (Message, error) {
	var w messageWire
	if err := json.Unmarshal(b, &w); err != nil {
		return Message{}, err
	}
	var m Message
	m.setWire(&w)
	return m, nil
}

var messageJSONSeeds = []string{
	`{"role":"user","content":"hi"}`,
	` { "role" : "user" , "content" : "a\"b\\c\n\u00e9\ud83d\ude42" , "name" : "ann" } `,
	`{"ROLE":"user","Content":"case-insensitive names, as encoding/json"}`,
	`{"r\u006fle":"user","content":"an escaped name"}`,
	`{"role":"user","content":"first","content":"duplicates: the last wins"}`,
	`{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,QQ=="}}],"content":"text after parts"}`,
	`{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b}]{"}]}`,
	`{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]}`,
	`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":[1,{\"b\":\"}\"}]}"}}]}`,
	`{"role":"tool","tool_call_id":"c1","content":"r","extra":{"nested":[1,2,{"x":"]"}]},"n":-1.5e3,"t":true,"f":false,"z":null}`,
	`{"role":"user","content":"bad utf8 \xff here"}`,
	`{"role":null,"content":null,"name":null,"tool_calls":null,"tool_call_id":null}`,
	`{}`,
	`null`,
}

func TestMessage_UnmarshalJSON_MatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range messageJSONSeeds {
		checkMessageJSON(t, []byte(in))
	}
}

func FuzzMessageUnmarshalJSON(f *testing.F) {
	for _, in := range messageJSONSeeds {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // encoding/json refuses invalid JSON before any UnmarshalJSON runs
		}
		checkMessageJSON(t, b)
	})
}

func checkMessageJSON(t *testing.T, b []byte) {
	t.Helper()
	want, wantErr := referenceMessage(b)
	var got Message
	gotErr := json.Unmarshal(b, &got)
	if (wantErr != nil) != (gotErr != nil) {
		t.Fatalf("%s: err %v, want %v", b, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", b, got, want)
	}
}
