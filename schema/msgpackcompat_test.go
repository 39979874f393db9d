package schema_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/llmq/llmq/schema"
)

// The refl types are the hot-path types without their methods: msgpack
// codes them by reflection from the same struct tags, as llmq did before
// the codecs were written by hand. Their bytes are what peers of the
// previous version send and read.
type (
	reflRequest  schema.Request
	reflResponse schema.Response
	reflChunk    schema.Chunk
)

// oldMessage is Message as the previous version wrote it: its hand-written
// codec wrote this map, with tool calls by reflection.
type oldMessage struct {
	Role       string            `msgpack:"role"`
	Content    any               `msgpack:"content"`
	Name       string            `msgpack:"name,omitempty"`
	ToolCalls  []schema.ToolCall `msgpack:"tool_calls,omitempty"`
	ToolCallID string            `msgpack:"tool_call_id,omitempty"`
}

func toOldMessage(m *schema.Message) oldMessage {
	o := oldMessage{Role: m.Role, Content: string(m.Content), Name: m.Name, ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID}
	switch {
	case m.Parts != nil:
		o.Content = m.Parts
	case m.Content == "" && len(m.ToolCalls) > 0:
		o.Content = nil
	}
	return o
}

// gen makes values that set, leave unset, or leave empty each field, with
// strings of every msgpack length class and integers at every boundary.
type gen struct{ r *rand.Rand }

func (g gen) coin() bool { return g.r.IntN(2) == 0 }

var genStrings = []string{"", "a", "hello", "héllo wörld", "日本語のテキスト", "emoji 🎉🚀", "tab\tnew\nline\x00nul",
	strings.Repeat("x", 31), strings.Repeat("y", 32), strings.Repeat("z", 255), strings.Repeat("ü", 200),
	strings.Repeat("w", 65535), strings.Repeat("v", 70000), "\xff\xfe invalid utf-8"}

// str returns mostly short strings, now and then one of every length
// class.
func (g gen) str() string {
	if g.r.IntN(40) == 0 {
		return genStrings[g.r.IntN(len(genStrings))]
	}
	return genStrings[g.r.IntN(8)]
}

var genInts = []int64{0, 1, -1, 31, -32, -33, 127, 128, -128, -129, 255, 256, 32767, -32768, 65535, 65536,
	math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MaxUint32, math.MaxInt64, math.MinInt64}

func (g gen) int() int { return int(genInts[g.r.IntN(len(genInts))]) }

func (g gen) intPtr() *int {
	if g.coin() {
		return nil
	}
	v := g.int()
	return &v
}

var genFloats = []float64{0, math.Copysign(0, -1), 0.5, -1.25, 1e300, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), 3}

func (g gen) float() float64 { return genFloats[g.r.IntN(len(genFloats))] }

func (g gen) floatPtr() *float64 {
	if g.coin() {
		return nil
	}
	v := g.float()
	return &v
}

func (g gen) boolPtr() *bool {
	if g.coin() {
		return nil
	}
	v := g.coin()
	return &v
}

func (g gen) strings(max int) []string {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+g.r.IntN(max))
	for i := range out {
		out[i] = g.str()
	}
	return out
}

func (g gen) rawJSON() schema.RawJSON {
	switch g.r.IntN(3) {
	case 0:
		return nil
	case 1:
		return schema.RawJSON(`{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer","minimum":-3}},"required":["zeta"]}`)
	}
	return schema.RawJSON(`{"a":[1,2.5,true,null,"s"],"b":{}}`)
}

func (g gen) toolCalls() []schema.ToolCall {
	if g.r.IntN(3) > 0 {
		return nil
	}
	out := make([]schema.ToolCall, 1+g.r.IntN(3))
	for i := range out {
		out[i] = schema.ToolCall{ID: g.str(), Type: schema.ToolTypeFunction, Function: schema.FunctionCall{Name: g.str(), Arguments: `{"city":"Paris"}`}}
	}
	return out
}

func (g gen) message() schema.Message {
	m := schema.Message{Role: []string{schema.RoleSystem, schema.RoleUser, schema.RoleAssistant, schema.RoleTool, ""}[g.r.IntN(5)]}
	if g.r.IntN(5) == 0 {
		m.Parts = []schema.ContentPart{{Type: schema.PartText, Text: g.str()},
			{Type: schema.PartImageURL, ImageURL: &schema.ImageURL{URL: "data:image/png;base64,iVBORw0KGgo=", Detail: []string{"", "low"}[g.r.IntN(2)]}}}
	} else {
		m.Content = schema.Content(g.str())
	}
	if g.coin() {
		m.Name = g.str()
	}
	m.ToolCalls = g.toolCalls()
	if g.coin() {
		m.ToolCallID = g.str()
	}
	return m
}

func (g gen) messages() []schema.Message {
	switch g.r.IntN(6) {
	case 0:
		return nil
	case 1:
		return []schema.Message{}
	}
	out := make([]schema.Message, 1+g.r.IntN(4))
	for i := range out {
		out[i] = g.message()
	}
	return out
}

func (g gen) request() *schema.Request {
	r := &schema.Request{Messages: g.messages(), MaxTokens: g.intPtr(), Temperature: g.floatPtr(), TopP: g.floatPtr(),
		Stop: g.strings(4), Stream: g.coin(), MaxCompletionTokens: g.intPtr(), ParallelToolCalls: g.boolPtr(),
		PresencePenalty: g.floatPtr(), FrequencyPenalty: g.floatPtr(), Logprobs: g.coin(), TopLogprobs: g.intPtr(),
		N: g.intPtr(), Input: g.strings(3), Dimensions: g.intPtr()}
	if g.coin() {
		r.Model = g.str()
	}
	if g.coin() {
		r.User = g.str()
	}
	switch g.r.IntN(4) {
	case 1:
		r.Metadata = schema.Metadata{}
	case 2:
		r.Metadata = schema.Metadata{"session_id": g.str()}
	case 3:
		r.Metadata = schema.Metadata{"tags": "a,b", "team": g.str(), "日本": "語"}
	}
	if g.coin() {
		r.Tags = schema.TagList{"free", "team-a"}
	}
	if g.coin() {
		r.Tools = make([]schema.Tool, 1+g.r.IntN(3))
		for i := range r.Tools {
			r.Tools[i] = schema.Tool{Type: schema.ToolTypeFunction, Function: schema.Function{Name: g.str(), Description: g.str(),
				Parameters: g.rawJSON(), Strict: g.boolPtr()}}
		}
	}
	switch g.r.IntN(4) {
	case 1:
		r.ToolChoice = &schema.ToolChoice{Mode: schema.ToolChoiceAuto}
	case 2:
		r.ToolChoice = &schema.ToolChoice{Mode: schema.ToolChoiceFunction, Function: "get_weather"}
	}
	switch g.r.IntN(4) {
	case 1:
		r.ResponseFormat = &schema.ResponseFormat{Type: schema.FormatJSONObject}
	case 2:
		r.ResponseFormat = &schema.ResponseFormat{Type: schema.FormatJSONSchema, JSONSchema: &schema.JSONSchema{Name: g.str(),
			Description: g.str(), Schema: g.rawJSON(), Strict: g.boolPtr()}}
	}
	if g.coin() {
		s := int64(g.int())
		r.Seed = &s
	}
	if g.coin() {
		r.StreamOptions = &schema.StreamOptions{IncludeUsage: g.coin()}
	}
	if g.coin() {
		r.ReasoningEffort = g.str()
	}
	if g.coin() {
		r.EncodingFormat = g.str()
	}
	return r
}

func (g gen) logprobs() *schema.Logprobs {
	switch g.r.IntN(4) {
	case 0, 1:
		return nil
	case 2:
		return &schema.Logprobs{}
	}
	l := &schema.Logprobs{Content: make([]schema.TokenLogprob, 1+g.r.IntN(3))}
	for i := range l.Content {
		t := &l.Content[i]
		t.Token, t.Logprob = g.str(), g.float()
		if g.coin() {
			t.Bytes = []int{72, 105, g.int()}
		}
		if g.coin() {
			t.TopLogprobs = []schema.TopLogprob{{Token: g.str(), Logprob: g.float()}, {Token: "x", Logprob: -2, Bytes: []int{120}}}
		} else if g.coin() {
			t.TopLogprobs = []schema.TopLogprob{}
		}
	}
	return l
}

func (g gen) usage() schema.Usage {
	return schema.Usage{PromptTokens: g.int(), CompletionTokens: g.int(), TotalTokens: g.int()}
}

func (g gen) routing() *schema.Routing {
	if g.coin() {
		return nil
	}
	r := &schema.Routing{Tier: g.str(), Deployment: g.str(), Worker: g.str(), Provider: g.str(), Model: g.str(),
		Attempts: g.int(), QueueMs: g.float(), CallMs: g.float(), TTFTMs: g.float(), CostUSD: g.float()}
	if g.coin() {
		r.Dispatcher = g.str()
	}
	return r
}

func (g gen) response() *schema.Response {
	r := &schema.Response{ID: g.str(), Object: schema.ObjectCompletion, Created: int64(g.int()), Model: g.str(),
		Usage: g.usage(), Routing: g.routing()}
	switch g.r.IntN(5) {
	case 0:
	case 1:
		r.Choices = []schema.Choice{}
	default:
		r.Choices = make([]schema.Choice, 1+g.r.IntN(3))
		for i := range r.Choices {
			r.Choices[i] = schema.Choice{Index: g.int(), Message: g.message(), FinishReason: g.str(), Logprobs: g.logprobs()}
		}
	}
	return r
}

func (g gen) chunk() *schema.Chunk {
	c := &schema.Chunk{ID: g.str(), Object: schema.ObjectChunk, Created: int64(g.int()), Model: g.str(), Routing: g.routing()}
	if g.coin() {
		u := g.usage()
		c.Usage = &u
	}
	switch g.r.IntN(5) {
	case 0:
	case 1:
		c.Choices = []schema.ChunkChoice{}
	default:
		c.Choices = make([]schema.ChunkChoice, 1+g.r.IntN(2))
		for i := range c.Choices {
			ch := &c.Choices[i]
			ch.Index, ch.Logprobs = g.int(), g.logprobs()
			if g.coin() {
				ch.Delta.Role = g.str()
			}
			if g.coin() {
				ch.Delta.Content = g.str()
			}
			switch g.r.IntN(3) {
			case 1:
				ch.Delta.ToolCalls = []schema.ToolCallDelta{}
			case 2:
				ch.Delta.ToolCalls = []schema.ToolCallDelta{{Index: g.int(), ID: g.str(), Type: g.str(),
					Function: schema.FunctionCallDelta{Name: g.str(), Arguments: g.str()}}}
			}
			if g.coin() {
				f := g.str()
				ch.FinishReason = &f
			}
		}
	}
	return c
}

// sameBytes reports whether a and b encode the same value: the same bytes,
// or, for values with maps of several entries (whose order Go leaves
// random), the same decoded value.
func sameBytes(t *testing.T, a, b []byte) bool {
	t.Helper()
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if err := msgpack.Unmarshal(a, &va); err != nil {
		t.Fatalf("generic decode: %v", err)
	}
	if err := msgpack.Unmarshal(b, &vb); err != nil {
		t.Fatalf("generic decode: %v", err)
	}
	return reflect.DeepEqual(va, vb)
}

// checkCompat encodes v with the hand-written codec (hand) and its plain
// twin with reflection (plain), and requires the same bytes; then decodes
// both byte strings with both codecs and requires the same value.
func checkCompat[T any, P any](t *testing.T, i int, v *T, toPlain func(*T) *P, fromPlain func(*P) *T) {
	t.Helper()
	hand, err := schema.MsgPack.Marshal(v)
	if err != nil {
		t.Fatalf("case %d: hand-written encode: %v", i, err)
	}
	plain, err := msgpack.Marshal(toPlain(v))
	if err != nil {
		t.Fatalf("case %d: reflection encode: %v", i, err)
	}
	if !sameBytes(t, hand, plain) {
		t.Fatalf("case %d: bytes differ\nhand:  %x\nplain: %x\nvalue: %+v", i, hand, plain, v)
	}
	byValue, err := schema.MsgPack.Marshal(*v)
	if err != nil {
		t.Fatalf("case %d: encode by value: %v", i, err)
	}
	if !sameBytes(t, hand, byValue) {
		t.Fatalf("case %d: by value, bytes differ\nvalue:   %x\npointer: %x", i, byValue, hand)
	}
	for _, data := range [][]byte{hand, plain} {
		var got T
		if err := schema.MsgPack.Unmarshal(data, &got); err != nil {
			t.Fatalf("case %d: hand-written decode: %v", i, err)
		}
		var p P
		if err := schema.MsgPack.Unmarshal(data, &p); err != nil {
			t.Fatalf("case %d: reflection decode: %v", i, err)
		}
		if want := fromPlain(&p); !reflect.DeepEqual(&got, want) {
			t.Fatalf("case %d: decoded values differ\nhand:  %+v\nplain: %+v", i, got, *want)
		}
	}
}

func TestMsgpack_Request_SameBytesAndValuesAsReflection(t *testing.T) {
	t.Parallel()
	n := 42
	cases := []*schema.Request{{}, plainRequest(), {Messages: []schema.Message{}}, {Input: schema.InputList{}},
		{Messages: []schema.Message{{}}}, {MaxTokens: &n, Stop: schema.StopList{""}, Tags: schema.TagList{}, Metadata: schema.Metadata{"": ""}}}
	g := gen{rand.New(rand.NewPCG(14, 1))}
	// Large: strings of str32, arrays and maps of 16-bit lengths.
	big := g.request()
	big.Model, big.Messages, big.Metadata = strings.Repeat("m", 70000), make([]schema.Message, 300), schema.Metadata{}
	for i := range big.Messages {
		big.Messages[i] = g.message()
	}
	for i := range 20 {
		big.Metadata[strings.Repeat("k", i)] = strings.Repeat("v", 1000*i)
	}
	cases = append(cases, big)
	for range 1500 {
		cases = append(cases, g.request())
	}
	for i, c := range cases {
		checkCompat(t, i, c, func(r *schema.Request) *reflRequest { return (*reflRequest)(r) },
			func(p *reflRequest) *schema.Request { return (*schema.Request)(p) })
	}
}

func TestMsgpack_Response_SameBytesAndValuesAsReflection(t *testing.T) {
	t.Parallel()
	cases := []*schema.Response{{}, {Choices: []schema.Choice{{}}, Routing: &schema.Routing{}},
		{Choices: []schema.Choice{{Logprobs: &schema.Logprobs{Content: []schema.TokenLogprob{{}}}}}}}
	g := gen{rand.New(rand.NewPCG(14, 2))}
	big := g.response()
	big.Choices = make([]schema.Choice, 40)
	for i := range big.Choices {
		big.Choices[i] = schema.Choice{Index: i, Message: g.message(), FinishReason: schema.FinishLength, Logprobs: g.logprobs()}
	}
	cases = append(cases, big)
	for range 1500 {
		cases = append(cases, g.response())
	}
	for i, c := range cases {
		checkCompat(t, i, c, func(r *schema.Response) *reflResponse { return (*reflResponse)(r) },
			func(p *reflResponse) *schema.Response { return (*schema.Response)(p) })
	}
}

func TestMsgpack_Chunk_SameBytesAndValuesAsReflection(t *testing.T) {
	t.Parallel()
	stop := schema.FinishStop
	cases := []*schema.Chunk{{}, {Choices: []schema.ChunkChoice{{}}}, {Usage: &schema.Usage{}, Routing: &schema.Routing{}},
		{Choices: []schema.ChunkChoice{{FinishReason: &stop, Delta: schema.Delta{ToolCalls: []schema.ToolCallDelta{{}}}}}}}
	g := gen{rand.New(rand.NewPCG(14, 3))}
	for range 1500 {
		cases = append(cases, g.chunk())
	}
	for i, c := range cases {
		checkCompat(t, i, c, func(r *schema.Chunk) *reflChunk { return (*reflChunk)(r) },
			func(p *reflChunk) *schema.Chunk { return (*schema.Chunk)(p) })
	}
}

// The message codec was hand-written before; its tool calls went by
// reflection and now do not.
func TestMsgpack_Message_SameBytesAsBefore(t *testing.T) {
	t.Parallel()
	g := gen{rand.New(rand.NewPCG(14, 4))}
	for i := range 1500 {
		m := g.message()
		hand, err := schema.MsgPack.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		old := toOldMessage(&m)
		plain, err := msgpack.Marshal(&old)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hand, plain) {
			t.Fatalf("case %d: bytes differ\nhand:  %x\nplain: %x", i, hand, plain)
		}
		var got schema.Message
		if err := schema.MsgPack.Unmarshal(plain, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("case %d: decoded %+v, want %+v", i, got, m)
		}
	}
}

// perturb returns v, a decoded msgpack map, with unknown keys a newer peer
// might send (of every shape) and some known keys set to nil.
func perturb(g gen, v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for k, e := range m {
		switch g.r.IntN(8) {
		case 0:
			m[k] = nil
		case 1, 2, 3:
			m[k] = perturb(g, e)
		}
		if s, ok := e.([]any); ok {
			for i := range s {
				s[i] = perturb(g, s[i])
			}
		}
	}
	unknown := []any{"x", int64(-5), uint64(math.MaxUint64), 1.5, true, nil, []byte{1, 2}, []any{map[string]any{"a": []any{}}},
		map[string]any{"deep": map[string]any{"er": []any{1, "2"}}}, strings.Repeat("long key value ", 10)}
	for range g.r.IntN(3) {
		m["future_"+strings.Repeat("k", g.r.IntN(40))] = unknown[g.r.IntN(len(unknown))]
	}
	return m
}

// checkSameDecode decodes data with the hand-written codec and by
// reflection, and requires the same outcome.
func checkSameDecode[T any, P any](t *testing.T, name string, data []byte, fromPlain func(*P) *T) {
	t.Helper()
	var got T
	errHand := schema.MsgPack.Unmarshal(data, &got)
	var p P
	errPlain := schema.MsgPack.Unmarshal(data, &p)
	switch {
	case errHand == nil && errPlain == nil:
		if want := fromPlain(&p); !deepEqualNaN(reflect.ValueOf(&got), reflect.ValueOf(want)) {
			t.Fatalf("%s: decoded values differ for %x\nhand:  %+v\nplain: %+v", name, data, got, *want)
		}
	case errHand != nil && errPlain != nil:
	case errPlain == nil && strings.Contains(errHand.Error(), "got an array, want a map"):
		// A struct as an array of its fields: reflection took it,
		// llmq never sent it, the hand-written codecs refuse it.
	default:
		t.Fatalf("%s: for %x hand-written decode says %v, reflection %v", name, data, errHand, errPlain)
	}
}

func TestMsgpack_UnknownKeysAndNilsDecodeAsReflectionDid(t *testing.T) {
	t.Parallel()
	g := gen{rand.New(rand.NewPCG(14, 5))}
	remarshal := func(v any) []byte {
		t.Helper()
		data, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var generic any
		if err := msgpack.Unmarshal(data, &generic); err != nil {
			t.Fatal(err)
		}
		if data, err = msgpack.Marshal(perturb(g, generic)); err != nil {
			t.Fatal(err)
		}
		return data
	}
	for i := range 1000 {
		req, resp, chunk, hb := g.request(), g.response(), g.chunk(), g.heartbeat()
		checkSameDecode(t, "request", remarshal(req), func(p *reflRequest) *schema.Request { return (*schema.Request)(p) })
		checkSameDecode(t, "response", remarshal(resp), func(p *reflResponse) *schema.Response { return (*schema.Response)(p) })
		checkSameDecode(t, "chunk", remarshal(chunk), func(p *reflChunk) *schema.Chunk { return (*schema.Chunk)(p) })
		checkSameDecode(t, "heartbeat", remarshal(hb), func(p *reflHeartbeat) *schema.Heartbeat { return (*schema.Heartbeat)(p) })
		// A newer peer's reply with fields this version does not know
		// still decodes.
		reply := perturb(g, map[string]any{}).(map[string]any)
		reply["id"], reply["system_fingerprint"] = "x", map[string]any{"v": []any{1, "2"}}
		data, err := msgpack.Marshal(reply)
		if err != nil {
			t.Fatal(err)
		}
		got, err := schema.DecodeReply(schema.MsgPack, data, false)
		if err != nil || got.ID != "x" {
			t.Fatalf("case %d: reply with unknown keys: %+v, %v", i, got, err)
		}
	}
}

// FuzzMsgpackDecodersAgree feeds the same bytes to the hand-written
// decoders and to reflection over the same struct tags: where both accept
// the body they must read the same value, and neither may accept what the
// other refuses. The seeds are real bodies.
func FuzzMsgpackDecodersAgree(f *testing.F) {
	g := gen{rand.New(rand.NewPCG(14, 6))}
	for range 20 {
		for _, v := range []any{g.request(), g.response(), g.chunk(), g.heartbeat()} {
			data, err := schema.MsgPack.Marshal(v)
			if err != nil {
				f.Fatal(err)
			}
			if len(data) < 4096 {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameDecode(t, "request", data, func(p *reflRequest) *schema.Request { return (*schema.Request)(p) })
		checkSameDecode(t, "response", data, func(p *reflResponse) *schema.Response { return (*schema.Response)(p) })
		checkSameDecode(t, "chunk", data, func(p *reflChunk) *schema.Chunk { return (*schema.Chunk)(p) })
		checkSameDecode(t, "heartbeat", data, func(p *reflHeartbeat) *schema.Heartbeat { return (*schema.Heartbeat)(p) })
	})
}

// deepEqualNaN is reflect.DeepEqual with a NaN equal to a NaN (a hostile
// body may carry one).
func deepEqualNaN(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return deepEqualNaN(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !deepEqualNaN(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !deepEqualNaN(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// A msgpack body's errors are bad_request and name the field, as a JSON
// body's do.
func TestDecodeRequest_MsgpackErrorsNameTheField(t *testing.T) {
	t.Parallel()
	msg := []any{map[string]any{"role": "user", "content": "hi"}}
	tests := []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"messages": msg, "max_tokens": "5"}, "max_tokens: "},
		{map[string]any{"messages": msg, "temperature": "hot"}, "temperature: "},
		{map[string]any{"messages": msg, "stream": 1}, "stream: "},
		{map[string]any{"messages": msg, "stop": 5}, "stop: "},
		{map[string]any{"messages": msg, "tools": "none"}, "tools: "},
		{map[string]any{"messages": msg, "tool_choice": 3}, "tool_choice: "},
		{map[string]any{"messages": msg, "response_format": []any{1}}, "response_format: "},
		{map[string]any{"messages": msg, "metadata": map[string]any{"team": 5}}, "metadata.team: "},
		{map[string]any{"messages": "hi"}, "messages: "},
		{map[string]any{"messages": []any{map[string]any{"role": 5}}}, "messages: "},
	}
	for _, tt := range tests {
		data, err := msgpack.Marshal(tt.body)
		if err != nil {
			t.Fatal(err)
		}
		_, err = schema.DecodeRequest(schema.MsgPack, data)
		var e *schema.Error
		if !errors.As(err, &e) || e.Code != schema.CodeBadRequest {
			t.Fatalf("%v: error %v, want a bad_request *schema.Error", tt.body, err)
		}
		if !strings.Contains(e.Message, "malformed msgpack body: "+tt.want) {
			t.Errorf("%v: message %q, want it to name the field (%q)", tt.body, e.Message, tt.want)
		}
	}
}

// A request with keys of a newer version decodes: they are skipped.
func TestDecodeRequest_MsgpackUnknownKeysSkipped(t *testing.T) {
	t.Parallel()
	data, err := msgpack.Marshal(map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hi", "audio": map[string]any{"id": "a"}}},
		"modalities": []any{"text", "audio"}, "prediction": map[string]any{"type": "content", "content": []any{1, 2.5, nil}},
		"a_key_much_longer_than_any_key_llmq_knows_of_at_all": "x", "max_tokens": 7})
	if err != nil {
		t.Fatal(err)
	}
	req, err := schema.DecodeRequest(schema.MsgPack, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Messages) != 1 || req.Messages[0].Text() != "hi" || req.Limit() != 7 {
		t.Fatalf("decoded %+v", req)
	}
}

// A forced tool choice is written as reflection wrote its object, and
// read back.
func TestMsgpack_ToolChoice_SameBytesAsReflection(t *testing.T) {
	t.Parallel()
	type function struct {
		Name string `msgpack:"name"`
	}
	type object struct {
		Type     string   `msgpack:"type"`
		Function function `msgpack:"function"`
	}
	for _, name := range []string{"get_weather", "", "日本", strings.Repeat("f", 300)} {
		tc := &schema.ToolChoice{Mode: schema.ToolChoiceFunction, Function: name}
		hand, err := schema.MsgPack.Marshal(tc)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := msgpack.Marshal(object{Type: schema.ToolTypeFunction, Function: function{Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hand, plain) {
			t.Fatalf("%q: bytes differ\nhand:  %x\nplain: %x", name, hand, plain)
		}
		var got schema.ToolChoice
		err = schema.MsgPack.Unmarshal(plain, &got)
		switch {
		case name == "" && err == nil:
			t.Fatalf("a forced choice without a name decoded: %+v", got)
		case name != "" && (err != nil || got != *tc):
			t.Fatalf("%q: decoded %+v, %v", name, got, err)
		}
	}
}

// Nil pointers of the hand-coded types encode as nil, as before, and
// decoding into one is an error, not a panic.
func TestMsgpack_NilPointers(t *testing.T) {
	t.Parallel()
	for _, v := range []any{(*schema.Request)(nil), (*schema.Response)(nil), (*schema.Chunk)(nil), (*schema.Heartbeat)(nil)} {
		data, err := schema.MsgPack.Marshal(v)
		if err != nil || !bytes.Equal(data, []byte{0xc0}) {
			t.Errorf("%T: encoded %x, %v; want c0", v, data, err)
		}
		if err := schema.MsgPack.Unmarshal([]byte{0x80}, v); err == nil {
			t.Errorf("%T: decoded into a nil pointer", v)
		}
	}
}
