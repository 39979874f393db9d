package provider

import (
	"context"
	"encoding/base64"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/llmq/llmq/schema"
)

// Image is an image as the providers that take images inline want it: its
// media type and its bytes in base64.
type Image struct {
	MediaType string // "image/png"
	Base64    string
}

// LoadImage returns the image an image_url part names: a data URI's
// payload as it is, or an http(s) URL fetched with o.HTTP, at most
// o.MaxImageBytes within o.ImageTimeout, as LiteLLM does for providers
// that cannot fetch URLs themselves. Every failure is a bad_request naming
// the URL's host, never its query (which may hold a signature).
//
// The worker fetches what a producer names: run it where the URLs a
// producer could name are not a risk, or send images as data URIs.
func (o *Options) LoadImage(ctx context.Context, url string) (Image, error) {
	if strings.HasPrefix(url, "data:") {
		mt, data, err := schema.ParseDataURI(url)
		if err != nil {
			return Image{}, err
		}
		return Image{MediaType: mt, Base64: data}, nil
	}
	host := urlHost(url)
	ctx, cancel := context.WithTimeout(ctx, o.imageTimeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Image{}, schema.Errorf(schema.CodeBadRequest, "image URL on %s: %v", host, err)
	}
	req.Header.Set("Accept", "image/*")
	resp, err := o.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Image{}, schema.Errorf(schema.CodeBadRequest, "image URL on %s: not fetched within %s", host, o.imageTimeout())
		}
		return Image{}, schema.Errorf(schema.CodeBadRequest, "image URL on %s: fetch failed", host)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Image{}, schema.Errorf(schema.CodeBadRequest, "image URL on %s: status %d", host, resp.StatusCode)
	}
	limit := o.MaxImageBytes
	if limit <= 0 {
		limit = schema.DefaultMaxImageBytes
	}
	if resp.ContentLength > limit {
		return Image{}, schema.Errorf(schema.CodeBadRequest, "image URL on %s: %d bytes is over the limit of %d", host, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return Image{}, schema.Errorf(schema.CodeBadRequest, "image URL on %s: read failed", host)
	}
	if int64(len(b)) > limit {
		return Image{}, schema.Errorf(schema.CodeBadRequest, "image URL on %s: over the limit of %d bytes", host, limit)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !strings.HasPrefix(mt, "image/") {
		mt = http.DetectContentType(b)
	}
	if !strings.HasPrefix(mt, "image/") {
		return Image{}, schema.Errorf(schema.CodeBadRequest, "image URL on %s: content of type %q is not an image", host, mt)
	}
	return Image{MediaType: mt, Base64: base64.StdEncoding.EncodeToString(b)}, nil
}

func (o *Options) imageTimeout() time.Duration {
	if o.ImageTimeout <= 0 {
		return DefaultImageTimeout
	}
	return o.ImageTimeout
}

// urlHost returns the host of an http(s) URL, for errors.
func urlHost(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	if i := strings.LastIndexByte(host, '@'); i >= 0 { // user:password@
		host = host[i+1:]
	}
	return host
}
