package dispatcher

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

func jsonJob(body string, h nats.Header) *nats.Msg {
	if h == nil {
		h = nats.Header{}
	}
	h[schema.HeaderContentType] = []string{schema.ContentTypeJSON}
	return &nats.Msg{Header: h, Data: []byte(body)}
}

func TestSessionKey_EveryTurnOfAConversationHasTheKeyOfItsOpening(t *testing.T) {
	t.Parallel()
	turn1 := `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"plan a trip"}]}`
	turn3 := `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"plan a trip"},{"role":"assistant","content":"where?"},{"role":"user","content":"Rome"},{"role":"assistant","content":"when?"},{"role":"user","content":"May"}]}`
	other := `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"plan a party"}]}`
	k1, k3, ko := sessionKey(jsonJob(turn1, nil)), sessionKey(jsonJob(turn3, nil)), sessionKey(jsonJob(other, nil))
	if k1 == 0 || k1 != k3 {
		t.Fatalf("turn 1 key %x, turn 3 key %x: want the same, not 0", k1, k3)
	}
	if ko == k1 {
		t.Fatalf("another conversation has the same key %x", ko)
	}
	m := &schema.Request{Messages: []schema.Message{{Role: schema.RoleSystem, Content: "be brief"}, {Role: schema.RoleUser, Content: "plan a trip"}, {Role: schema.RoleAssistant, Content: "where?"}, {Role: schema.RoleUser, Content: "Rome"}}}
	b, err := schema.MsgPack.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeMsgPack}}, Data: b}
	if k := sessionKey(msg); k != k1 {
		t.Fatalf("msgpack turn 2 key %x, want the JSON turns' %x", k, k1)
	}
	if v := msg.Header.Get(schema.HeaderSession); v == "" || retryKey(msg.Header) != k1 {
		t.Fatalf("header %s = %q (retry key %x): want the key written for retries", schema.HeaderSession, v, retryKey(msg.Header))
	}
}

func TestSessionKey_ExplicitSessionsComeFirst(t *testing.T) {
	t.Parallel()
	body := `{"messages":[{"role":"user","content":"hi"}],"user":"u-7","metadata":{"session_id":"s-1"}}`
	hdr := sessionKey(jsonJob(body, nats.Header{schema.HeaderSession: {"s-1"}}))
	meta := sessionKey(jsonJob(body, nil))
	user := sessionKey(jsonJob(`{"messages":[{"role":"user","content":"hi"}],"user":"u-7"}`, nil))
	plain := sessionKey(jsonJob(`{"messages":[{"role":"user","content":"hi"}]}`, nil))
	if hdr == 0 || hdr != meta {
		t.Fatalf("header key %x, metadata.session_id key %x: want the same session", hdr, meta)
	}
	if user == 0 || user == meta || user == plain || plain == 0 {
		t.Fatalf("user key %x, session key %x, opening key %x: want three different keys", user, meta, plain)
	}
}

func TestSessionKey_NoneWithoutAUserMessageOrForABadBody(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{"messages":[{"role":"system","content":"x"}]}`, `{"messages":`, `{}`} {
		m := jsonJob(body, nil)
		if k := sessionKey(m); k != 0 || m.Header.Get(schema.HeaderSession) != "" {
			t.Errorf("%s: key %x, header %q; want none", body, k, m.Header.Get(schema.HeaderSession))
		}
	}
}

func TestAffine_RendezvousIsStableAndSkipsFullHosts(t *testing.T) {
	t.Parallel()
	tr := &tier{workers: []*worker{host("a", 4, 0, 100), host("b", 4, 0, 100), host("c", 4, 0, 100)}}
	key := hashString("conversation")
	first := tr.affine(tr.workers, key)
	for range 10 {
		if got := tr.affine(tr.workers, key); got != first {
			t.Fatalf("affine %s then %s for one key", name(first), name(got))
		}
	}
	// Without the first choice (full), the second; the same every time.
	var rest []*worker
	for _, w := range tr.workers {
		if w != first {
			rest = append(rest, w)
		}
	}
	second := tr.affine(rest, key)
	if second == nil || second == first || tr.affine([]*worker{rest[1], rest[0]}, key) != second {
		t.Fatalf("second choice %s, want a stable other host", name(second))
	}
	// Keys spread over the hosts.
	seen := map[string]int{}
	for i := range 300 {
		seen[name(tr.affine(tr.workers, hashString(string(rune('a'+i%26))+string(rune(i)))))]++
	}
	for _, w := range tr.workers {
		if n := seen[name(w)]; n < 60 {
			t.Fatalf("keys per host %v: want each of 3 equal hosts near 100", seen)
		}
	}
}

// TestStay_ConversationWaitsForItsHostUpToStayFactor: four equal hosts,
// the one a conversation prefers full. Its turn waits for that host while
// the host's expected delay is within stayFactor (3) of a free host's —
// with 7 jobs ahead on 4 slots, (4+3+1)/4 = 2× (a host that hashing gave
// 7 of 12 conversations), and 3× — and goes where the strategy sends it
// beyond, or once it has waited stayFactor × the free host's delay.
func TestStay_ConversationWaitsForItsHostUpToStayFactor(t *testing.T) {
	t.Parallel()
	now := time.Now()
	key := hashString("conversation")
	for _, tc := range []struct {
		name   string
		held   int
		waited time.Duration
		stay   bool
	}{
		{"2× the free host's delay", 3, 0, true},
		{"3×", 7, 0, true},
		{"3.5×", 9, 0, false},
		{"2×, waited 3× already", 3, 3*70*time.Millisecond + time.Millisecond, false},
	} {
		tr := &tier{workers: []*worker{host("a", 4, 0, 70), host("b", 4, 0, 70), host("c", 4, 0, 70), host("d", 4, 0, 70)}}
		pref := tr.affine(tr.workers, key)
		pref.hb.InFlight, pref.held = 4, tc.held
		p := &pending{key: key, arrived: now.Add(-tc.waited)}
		cands := tr.candidates(nil, p, now)
		w, wait, ok := tr.stay(cands, p, now, 70)
		switch {
		case tc.stay && (!ok || w != nil || wait != pref):
			t.Errorf("%s: stay = %s, wait for %s, %v; want to wait for %s", tc.name, name(w), name(wait), ok, name(pref))
		case !tc.stay && ok:
			t.Errorf("%s: stay = %s, wait for %s; want the strategy's choice", tc.name, name(w), name(wait))
		}
	}
}
