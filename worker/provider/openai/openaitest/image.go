package openaitest

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"time"
)

// maxImage is OpenAI's limit on an image's size.
const maxImage = 20 << 20

// imageTimeout bounds the fake's download of an image URL.
const imageTimeout = 10 * time.Second

func decodeBase64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// isImage reports whether b is a PNG, JPEG, GIF or WebP image, by its
// magic bytes.
func isImage(b []byte) bool {
	if len(b) == 0 || len(b) > maxImage {
		return false
	}
	switch http.DetectContentType(b) {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return true
	}
	return false
}

// fetch downloads an image URL, as OpenAI does before the model sees it.
func (s *Server) fetch(r *http.Request, url string) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), imageTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxImage+1))
	if err != nil {
		return nil, false
	}
	return b, true
}
