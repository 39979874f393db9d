package schema_test

import (
	"errors"
	"testing"

	"github.com/llmq/llmq/schema"
)

// FuzzDecodeRequest feeds DecodeRequest arbitrary bodies. The first byte of
// the input selects the codec (odd: JSON, even: msgpack); the rest is the
// body. The seed corpus is in testdata/fuzz/FuzzDecodeRequest.
//
// Properties: DecodeRequest never panics; every failure is a *schema.Error
// with code bad_request and no request; every success passes Validate and
// survives a re-encode in the same codec.
func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		codec := schema.MsgPack
		if data[0]&1 == 1 {
			codec = schema.JSON
		}
		body := data[1:]
		req, err := schema.DecodeRequest(codec, body)
		if err != nil {
			var e *schema.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: error %v is a %T, want *schema.Error", codec, err, err)
			}
			if e.Code != schema.CodeBadRequest || e.Status != 400 {
				t.Fatalf("%s: error %+v, want bad_request/400", codec, e)
			}
			if req != nil {
				t.Fatalf("%s: request %+v returned with error %v", codec, req, err)
			}
			return
		}
		if req == nil {
			t.Fatalf("%s: nil request and nil error", codec)
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("%s: decoded request fails Validate: %v", codec, err)
		}
		again, err := codec.Marshal(req)
		if err != nil {
			t.Fatalf("%s: re-encode: %v", codec, err)
		}
		if _, err := schema.DecodeRequest(codec, again); err != nil {
			t.Fatalf("%s: re-encoded request %q does not decode: %v", codec, again, err)
		}
	})
}
