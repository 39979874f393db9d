package schema

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// partsBodies are content-part arrays of every shape: text and image
// parts, empty and nil members, unknown keys, and wrong types.
func partsBodies(t testing.TB) [][]byte {
	img := map[string]any{"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}
	var out [][]byte
	for _, v := range []any{
		[]ContentPart{{Type: PartText, Text: "a"}, {Type: PartImageURL, ImageURL: &ImageURL{URL: "https://x/y.png"}}},
		[]ContentPart{{Type: PartImageURL, ImageURL: &ImageURL{URL: "u", Detail: "low"}}, {}},
		[]ContentPart{},
		[]any{nil, map[string]any{"type": "text", "text": nil, "image_url": nil}},
		[]any{map[string]any{"type": "image_url", "image_url": img, "future": []any{1, map[string]any{"x": "y"}}}},
		[]any{map[string]any{"type": "image_url", "image_url": map[string]any{"url": "u", "extra": true}}},
		[]any{map[string]any{"type": 5}},
		[]any{map[string]any{"image_url": "not a map"}},
		[]any{map[string]any{"image_url": map[string]any{"url": 7}}},
		[]any{"text"},
		[]any{[]any{}},
		[]any{map[string]any{"text": []byte("bin text")}},
	} {
		data, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// checkPartsDecode decodes data with decodeParts and by reflection, and
// requires the same outcome (a struct sent as an array is refused by the
// first alone).
func checkPartsDecode(t *testing.T, data []byte) {
	var buf [32]byte
	got, errHand := decodeParts(msgpack.NewDecoder(bytes.NewReader(data)), buf[:])
	var want []ContentPart
	errPlain := msgpack.NewDecoder(bytes.NewReader(data)).Decode(&want)
	switch {
	case errHand == nil && errPlain == nil:
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("for %x: hand-written %+v, reflection %+v", data, got, want)
		}
	case errHand != nil && errPlain != nil:
	case errPlain == nil && errors.Is(errHand, errStructArray):
	default:
		t.Fatalf("for %x: hand-written decode says %v, reflection %v", data, errHand, errPlain)
	}
}

func TestDecodeParts_MatchesReflection(t *testing.T) {
	t.Parallel()
	for _, data := range partsBodies(t) {
		checkPartsDecode(t, data)
	}
}

func TestEncodeParts_SameBytesAsReflection(t *testing.T) {
	t.Parallel()
	for _, parts := range [][]ContentPart{nil, {}, {{}}, {{Type: PartText, Text: "héllo"}, {Type: PartImageURL, ImageURL: &ImageURL{URL: "u", Detail: "auto"}}},
		{{Type: PartImageURL, Text: "both", ImageURL: &ImageURL{}}}} {
		var hand bytes.Buffer
		if err := encodeParts(msgpack.NewEncoder(&hand), parts); err != nil {
			t.Fatal(err)
		}
		plain, err := msgpack.Marshal(parts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hand.Bytes(), plain) {
			t.Fatalf("%+v: hand %x, reflection %x", parts, hand.Bytes(), plain)
		}
	}
}

func FuzzDecodePartsMatchesReflection(f *testing.F) {
	for _, data := range partsBodies(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkMsgpack(data) != nil {
			return // Unmarshal refuses it before any decoder runs
		}
		checkPartsDecode(t, data)
	})
}
