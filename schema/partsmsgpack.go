package schema

import (
	"github.com/vmihailenco/msgpack/v5"
)

// encodeParts writes a message's content parts by hand, the bytes the
// reflection codec wrote for their struct tags (see msgpackmap.go).
func encodeParts(e *msgpack.Encoder, parts []ContentPart) error {
	if parts == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(parts)); err != nil {
		return err
	}
	w := mapWriter{e: e}
	for i := range parts {
		p := &parts[i]
		w.begin(1 + count(p.Text != "", p.ImageURL != nil))
		w.str("type", p.Type)
		if p.Text != "" {
			w.str("text", p.Text)
		}
		if u := p.ImageURL; u != nil {
			w.key("image_url")
			w.begin(1 + count(u.Detail != ""))
			w.str("url", u.URL)
			if u.Detail != "" {
				w.str("detail", u.Detail)
			}
		}
	}
	return w.err
}

// decodeParts reads a message's content parts, keys into buf.
func decodeParts(d *msgpack.Decoder, buf []byte) ([]ContentPart, error) {
	return decodeSlice(d, buf, (*ContentPart).decodeMsgpack)
}

func (p *ContentPart) decodeMsgpack(d *msgpack.Decoder, buf []byte) error {
	m, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	for range m {
		key, err := decodeKey(d, buf)
		if err != nil {
			return err
		}
		switch string(key) {
		case "type":
			p.Type, err = decodeCommon(d, buf)
		case "text":
			p.Text, err = d.DecodeString()
		case "image_url":
			p.ImageURL, err = decodeImageURL(d, buf)
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeImageURL reads an image part's source, nil for nil.
func decodeImageURL(d *msgpack.Decoder, buf []byte) (*ImageURL, error) {
	n, err := decodeMapHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	u := new(ImageURL)
	for range n {
		key, err := decodeKey(d, buf)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "url":
			u.URL, err = d.DecodeString()
		case "detail":
			u.Detail, err = d.DecodeString()
		default:
			err = d.Skip()
		}
		if err != nil {
			return nil, err
		}
	}
	return u, nil
}
