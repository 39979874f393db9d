package ollama_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// pngBytes returns a small real PNG.
func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func imageMessage(text, url string) schema.Message {
	return schema.Message{Role: schema.RoleUser, Parts: []schema.ContentPart{
		{Type: schema.PartText, Text: text},
		{Type: schema.PartImageURL, ImageURL: &schema.ImageURL{URL: url}},
	}}
}

func TestProvider_ResponseFormat_JSONObjectIsFormatJSON(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: `{"ok":true}`})
	p := newProvider(t, fake.URL())
	resp, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("json please")},
		ResponseFormat: &schema.ResponseFormat{Type: schema.FormatJSONObject}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := string(lastChat(t, fake).Body.Format); got != `"json"` {
		t.Errorf("format = %s, want \"json\"", got)
	}
	if resp.Text() != `{"ok":true}` {
		t.Errorf("text = %q", resp.Text())
	}
}

func TestProvider_ResponseFormat_JSONSchemaIsTheSchemaAndAnswered(t *testing.T) {
	t.Parallel()
	const sch = `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}`
	fake := ollamatest.NewServer(t, ollamatest.Config{Answer: func(req ollamatest.ChatRequest) ollamatest.Answer {
		// The fake answers JSON only when it was given the schema.
		if string(req.Format) != sch {
			return ollamatest.Answer{Content: "no schema"}
		}
		return ollamatest.Answer{Content: `{"name":"Ada","age":36}`}
	}})
	p := newProvider(t, fake.URL())
	req := &schema.Request{Messages: []schema.Message{user("who?")},
		ResponseFormat: &schema.ResponseFormat{Type: schema.FormatJSONSchema,
			JSONSchema: &schema.JSONSchema{Name: "person", Schema: schema.RawJSON(sch), Strict: ptr(true)}}}
	for _, streamed := range []bool{false, true} {
		var resp *schema.Response
		if streamed {
			_, resp = collect(t, p, req)
		} else {
			var err error
			if resp, err = p.Complete(context.Background(), req); err != nil {
				t.Fatalf("Complete: %v", err)
			}
		}
		var v struct {
			Name string `json:"name"`
			Age  int    `json:"age"`
		}
		if err := json.Unmarshal([]byte(resp.Text()), &v); err != nil || v.Name != "Ada" || v.Age != 36 {
			t.Errorf("streamed=%v: reply %q (%v), want the schema's JSON", streamed, resp.Text(), err)
		}
	}
}

func TestProvider_ResponseFormat_TextSendsNoFormat(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "plain"})
	_, err := newProvider(t, fake.URL()).Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("x")},
		ResponseFormat: &schema.ResponseFormat{Type: schema.FormatText}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := lastChat(t, fake).Body.Format; len(got) != 0 {
		t.Errorf("format = %s, want none", got)
	}
}

func TestProvider_Images_DataURIInline(t *testing.T) {
	t.Parallel()
	img := pngBytes(t)
	b64 := base64.StdEncoding.EncodeToString(img)
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "a grey square"})
	resp, err := newProvider(t, fake.URL()).Complete(context.Background(), &schema.Request{Messages: []schema.Message{
		imageMessage("what is this", "data:image/png;base64,"+b64)}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	m := lastChat(t, fake).Body.Messages[0]
	if m.Content != "what is this" || len(m.Images) != 1 || m.Images[0] != b64 {
		t.Errorf("message sent = %+v, want the text and the base64 without its data: prefix", m)
	}
	// The image counts in the prompt: 3 words and one image.
	if resp.Usage.PromptTokens != 4 {
		t.Errorf("prompt tokens = %d, want 4 (image included)", resp.Usage.PromptTokens)
	}
}

func TestProvider_Images_URLFetchedAndInlined(t *testing.T) {
	t.Parallel()
	img := pngBytes(t)
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cat.png" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(img)
	}))
	t.Cleanup(images.Close)
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "a cat"})
	p := newProvider(t, fake.URL())

	if _, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{
		imageMessage("what is this", images.URL+"/cat.png")}}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := lastChat(t, fake).Body.Messages[0].Images; len(got) != 1 || got[0] != base64.StdEncoding.EncodeToString(img) {
		t.Errorf("images sent = %v, want the fetched PNG in base64", got)
	}

	// A URL that fails is a bad_request naming the part, and nothing is sent.
	_, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{
		imageMessage("what is this", images.URL+"/missing.png?sig=secret")}})
	e := wantError(t, err, schema.CodeBadRequest)
	if !strings.Contains(e.Message, "messages[0].content[1].image_url") || !strings.Contains(e.Message, "404") ||
		strings.Contains(e.Message, "secret") {
		t.Errorf("error %q, want the part and the status named, the query not", e.Message)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("%d chats sent, want 1", n)
	}
}

func TestProvider_Images_URLOverLimitRefused(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte{0}, 4096)
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(big)
	}))
	t.Cleanup(images.Close)
	fake := ollamatest.NewServer(t, ollamatest.Config{})
	p := newProvider(t, fake.URL(), func(o *provider.Options) { o.MaxImageBytes = 1024; o.ImageTimeout = 5 * time.Second })
	_, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{imageMessage("x", images.URL+"/big.png")}})
	if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "limit") {
		t.Errorf("error %q, want the size limit named", e.Message)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d chats sent, want none", n)
	}
}

func TestProvider_SeedAndPenaltiesAreOptions(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
	_, err := newProvider(t, fake.URL()).Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("x")},
		Seed: ptr(int64(42)), PresencePenalty: ptr(0.5), FrequencyPenalty: ptr(-0.25),
		StreamOptions: &schema.StreamOptions{IncludeUsage: true}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := map[string]any{"seed": 42.0, "presence_penalty": 0.5, "frequency_penalty": -0.25}
	if got := lastChat(t, fake).Body.Options; !reflect.DeepEqual(got, want) {
		t.Errorf("options = %v, want %v", got, want)
	}
}

func TestProvider_ReasoningEffort_IsThink(t *testing.T) {
	t.Parallel()
	for effort, want := range map[string]string{"": "", "none": "false", "minimal": "true", "low": "true", "high": "true"} {
		fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
		_, err := newProvider(t, fake.URL()).Complete(context.Background(), &schema.Request{
			Messages: []schema.Message{user("x")}, ReasoningEffort: effort})
		if err != nil {
			t.Fatalf("%q: Complete: %v", effort, err)
		}
		if got := string(lastChat(t, fake).Body.Think); got != want {
			t.Errorf("reasoning_effort %q: think = %q, want %q", effort, got, want)
		}
	}
}

func TestProvider_ReasoningEffort_ModelWithoutThinking(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok", NoThink: []string{ollamatest.DefaultModel}})
	p := newProvider(t, fake.URL())
	_, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("x")}, ReasoningEffort: "high"})
	if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "does not support thinking") {
		t.Errorf("error %q, want Ollama's message", e.Message)
	}
	// "none" turns thinking off, which such a model takes.
	if _, err := p.Complete(context.Background(), &schema.Request{Messages: []schema.Message{user("x")}, ReasoningEffort: "none"}); err != nil {
		t.Errorf("reasoning_effort none: %v", err)
	}
}

func TestProvider_Unsupported_RefusedUnlessDropParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		param string
		set   func(*schema.Request)
	}{
		{"n", func(r *schema.Request) { r.N = ptr(2) }},
		{"logprobs", func(r *schema.Request) { r.Logprobs = true }},
		{"logprobs", func(r *schema.Request) { r.Logprobs = true; r.TopLogprobs = ptr(3) }},
	} {
		fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
		req := &schema.Request{Messages: []schema.Message{user("x")}}
		tc.set(req)
		_, err := newProvider(t, fake.URL()).Complete(context.Background(), req)
		if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, tc.param) {
			t.Errorf("%s: error %q does not name it", tc.param, e.Message)
		}
		if n := len(fake.Requests()); n != 0 {
			t.Errorf("%s: %d requests sent, want none", tc.param, n)
		}
		dropping := newProvider(t, fake.URL(), func(o *provider.Options) { o.DropParams = true })
		resp, err := dropping.Complete(context.Background(), req)
		if err != nil {
			t.Fatalf("%s with drop_params: %v", tc.param, err)
		}
		body := lastChat(t, fake).Body
		if len(resp.Choices) != 1 || body.Logprobs || body.TopLogprobs != 0 {
			t.Errorf("%s with drop_params: %d choices, logprobs %v/%d sent", tc.param, len(resp.Choices), body.Logprobs, body.TopLogprobs)
		}
	}
	// n = 1 is what Ollama gives: accepted.
	fake := ollamatest.NewServer(t, ollamatest.Config{Reply: "ok"})
	if _, err := newProvider(t, fake.URL()).Complete(context.Background(), &schema.Request{
		Messages: []schema.Message{user("x")}, N: ptr(1)}); err != nil {
		t.Errorf("n=1: %v", err)
	}
}

func TestProvider_EmbeddingOnlyModelRefusesChat(t *testing.T) {
	t.Parallel()
	fake := ollamatest.NewServer(t, ollamatest.Config{Models: []string{}, EmbedModels: []string{ollamatest.DefaultModel}})
	_, err := newProvider(t, fake.URL()).Complete(context.Background(), hello())
	if e := wantError(t, err, schema.CodeBadRequest); !strings.Contains(e.Message, "does not support chat") {
		t.Errorf("error %q, want Ollama's message", e.Message)
	}
}
