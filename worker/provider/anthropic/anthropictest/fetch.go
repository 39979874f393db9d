package anthropictest

import (
	"context"
	"io"
	"net/http"
	"time"
)

// maxImage is the API's limit on one image (5 MB).
const maxImage = 5 << 20

// fetchImages downloads the images given by URL, as the API does, and
// answers the failure the API would when one cannot be had or is not an
// image of a type it takes.
func (s *Server) fetchImages(ctx context.Context, req *Request) *Failure {
	for i, m := range req.Messages {
		for j, b := range m.Content.Items {
			if b.Type != "image" || b.Source == nil || b.Source.Type != "url" {
				continue
			}
			if f := s.fetchImage(ctx, b.Source.URL); f != "" {
				return invalid("messages.%d.content.%d.image.source.url: %s", i, j, f)
			}
		}
	}
	return nil
}

// fetchImage returns why url is no usable image, or "".
func (s *Server) fetchImage(ctx context.Context, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "Unable to download the file. Please verify the URL and try again."
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "Unable to download the file. Please verify the URL and try again."
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "Unable to download the file. Please verify the URL and try again."
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxImage+1))
	if err != nil {
		return "Unable to download the file. Please verify the URL and try again."
	}
	if len(data) > maxImage {
		return "image exceeds 5 MB maximum"
	}
	mt := http.DetectContentType(data)
	for _, t := range mediaTypes {
		if mt == t {
			return ""
		}
	}
	return "Unsupported image format: " + mt + ". Supported formats are image/jpeg, image/png, image/gif, image/webp."
}
