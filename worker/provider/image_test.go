package provider_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// png is the 8-byte PNG signature and a little more: enough for
// http.DetectContentType.
var png = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 32)...)

func TestOptions_LoadImage(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cat.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(png)
		case "/untyped":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(png)
		case "/page":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>hi</html>"))
		case "/big":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(bytes.Repeat([]byte{1}, 5000))
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	opts := provider.Options{MaxImageBytes: 1000, ImageTimeout: 300 * time.Millisecond}.WithDefaults()
	want := base64.StdEncoding.EncodeToString(png)
	tests := []struct {
		name, url, mediaType, errPart string
	}{
		{"data URI is used as is", "data:image/jpeg;base64,QUJD", "image/jpeg", ""},
		{"URL is fetched", srv.URL + "/cat.png", "image/png", ""},
		{"media type is sniffed when not given", srv.URL + "/untyped", "image/png", ""},
		{"not found is a bad request", srv.URL + "/nope?sig=SECRET", "", "status 404"},
		{"a page is not an image", srv.URL + "/page", "", `content of type "text/html; charset=utf-8" is not an image`},
		{"over the limit", srv.URL + "/big", "", "over the limit of 1000"},
		{"slow server times out", srv.URL + "/slow", "", "not fetched within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img, err := opts.LoadImage(context.Background(), tt.url)
			if tt.errPart != "" {
				var e *schema.Error
				if err == nil || !strings.Contains(err.Error(), tt.errPart) || !asError(err, &e) || e.Code != schema.CodeBadRequest {
					t.Fatalf("err = %v, want a bad_request containing %q", err, tt.errPart)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Fatalf("error shows the URL's query: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.MediaType != tt.mediaType {
				t.Fatalf("media type = %q, want %q", img.MediaType, tt.mediaType)
			}
			if strings.HasPrefix(tt.url, "http") && img.Base64 != want {
				t.Fatalf("data = %q, want %q", img.Base64, want)
			}
		})
	}
}

func TestOptions_Unsupported_RefusesOrDrops(t *testing.T) {
	t.Parallel()
	strict := provider.Options{}.WithDefaults()
	err := strict.Unsupported("ollama", "logprobs")
	var e *schema.Error
	if !asError(err, &e) || e.Code != schema.CodeBadRequest || !strings.Contains(e.Message, "ollama: logprobs is not supported") {
		t.Fatalf("strict: %v", err)
	}
	lenient := provider.Options{DropParams: true}.WithDefaults()
	if err := lenient.Unsupported("ollama", "logprobs"); err != nil {
		t.Fatalf("drop_params: %v", err)
	}
}

func TestReplay_EmitsTextAndWholeToolCalls(t *testing.T) {
	t.Parallel()
	resp := &schema.Response{Choices: []schema.Choice{{Message: schema.Message{Role: "assistant", Content: "hi",
		ToolCalls: []schema.ToolCall{{ID: "c1", Type: "function", Function: schema.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}}}}}
	var got []schema.ChunkChoice
	if err := provider.Replay(resp, func(c schema.ChunkChoice) error { got = append(got, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Delta.Content != "hi" || len(got[0].Delta.ToolCalls) != 1 ||
		got[0].Delta.ToolCalls[0].ID != "c1" || got[0].Delta.ToolCalls[0].Function.Arguments != `{"a":1}` {
		t.Fatalf("replayed %+v", got)
	}
}

func asError(err error, target **schema.Error) bool { return errors.As(err, target) }
