package gemini_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

// pngBytes is a 1×1 PNG.
var pngBytes, _ = base64.StdEncoding.DecodeString(
	"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

func imageRequest(url string) *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Parts: []schema.ContentPart{
		{Type: schema.PartText, Text: "what is"},
		{Type: schema.PartImageURL, ImageURL: &schema.ImageURL{URL: url, Detail: "low"}},
		{Type: schema.PartText, Text: "this?"},
	}}}}
}

func TestImages_DataURIGoesInline(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	data := base64.StdEncoding.EncodeToString(pngBytes)
	resp, err := newProvider(t, srv).Complete(context.Background(), imageRequest("data:image/png;base64,"+data))
	if err != nil {
		t.Fatal(err)
	}
	want := []geminitest.Content{{Role: "user", Parts: []geminitest.Part{
		{Text: "what is"}, {InlineData: &geminitest.Blob{MimeType: "image/png", Data: data}}, {Text: "this?"},
	}}}
	if got := srv.Requests()[0].Body.Contents; !reflect.DeepEqual(got, want) {
		t.Errorf("contents = %+v\nwant %+v", got, want)
	}
	// Gemini counts an image as 258 prompt tokens; the words add 3.
	if resp.Usage.PromptTokens != 258+3 {
		t.Errorf("usage = %+v", resp.Usage)
	}
}

func TestImages_URLIsFetchedAndSentInline(t *testing.T) {
	t.Parallel()
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cat.png" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(pngBytes)
	}))
	t.Cleanup(img.Close)
	srv := geminitest.NewServer(t, geminitest.Config{})
	p := newProvider(t, srv)
	if _, err := p.Complete(context.Background(), imageRequest(img.URL+"/cat.png")); err != nil {
		t.Fatal(err)
	}
	part := srv.Requests()[0].Body.Contents[0].Parts[1]
	if part.InlineData == nil || part.InlineData.MimeType != "image/png" ||
		part.InlineData.Data != base64.StdEncoding.EncodeToString(pngBytes) {
		t.Errorf("image part = %+v", part)
	}

	// A URL that does not answer with an image is the caller's error,
	// named by host, and no call is made.
	_, err := p.Complete(context.Background(), imageRequest(img.URL+"/missing.png?sig=secret"))
	e := wantCode(t, err, schema.CodeBadRequest)
	if !strings.Contains(e.Message, "messages[0].content[1].image_url") || strings.Contains(e.Message, "secret") {
		t.Errorf("message %q should name the part and not the query", e.Message)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("fake saw %d requests, want 1", n)
	}
}

func TestImages_TypeGeminiRefusesIsBadRequest(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	_, err := newProvider(t, srv).Complete(context.Background(), imageRequest("data:image/gif;base64,R0lGODlhAQABAAAAACw="))
	e := wantCode(t, err, schema.CodeBadRequest)
	if !strings.Contains(e.Message, "image/gif") || e.ProviderStatus != http.StatusBadRequest {
		t.Errorf("error %+v, want Gemini's 400 naming the type", e)
	}
}
