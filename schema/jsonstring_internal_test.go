package schema

import (
	"encoding/json"
	"testing"
)

func TestAppendJSONString_MatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `quote " and \ slash`, "tab\tnl\ncr\r", "\x00\x01\x1f", "<b>&amp;</b>",
		"é ü 日本", "line\u2028sep\u2029", "bad \xff utf8 \xc3", "emoji 🙂", "\x7f del"} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("a\"b\\c\x00<>&\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}
