package gemini_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

const embedModel = "gemini-embedding-001"

func embedProvider(t *testing.T, srv *geminitest.Server) provider.Embedder {
	t.Helper()
	return newProvider(t, srv, func(o *provider.Options) { o.Model = embedModel })
}

func TestEmbed_BatchEmbedContentsInInputOrder(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := &schema.Request{Input: schema.InputList{"alpha", "beta gamma", "alpha"}}
	resp, err := embedProvider(t, srv).Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Path != "/v1beta/models/"+embedModel+":batchEmbedContents" || r.Header.Get("X-Goog-Api-Key") != srv.Key() {
		t.Errorf("sent %s with key %q", r.Path, r.Header.Get("X-Goog-Api-Key"))
	}
	want := &geminitest.EmbedRequest{}
	for _, s := range req.Input {
		want.Requests = append(want.Requests, geminitest.EmbedContentRequest{Model: "models/" + embedModel,
			Content: geminitest.Content{Parts: []geminitest.Part{{Text: s}}}})
	}
	if !reflect.DeepEqual(r.Embed, want) {
		t.Errorf("body = %+v\nwant %+v", r.Embed, want)
	}
	if resp.Object != schema.ObjectList || resp.Model != embedModel || len(resp.Data) != 3 {
		t.Fatalf("response = %+v", resp)
	}
	for i, d := range resp.Data {
		if d.Index != i || d.Object != schema.ObjectEmbedding || !reflect.DeepEqual(d.Embedding.Floats, geminitest.Vector(req.Input[i], 768)) {
			t.Errorf("data[%d] = index %d, %d floats", i, d.Index, len(d.Embedding.Floats))
		}
	}
	if !reflect.DeepEqual(resp.Data[0].Embedding, resp.Data[2].Embedding) || reflect.DeepEqual(resp.Data[0].Embedding, resp.Data[1].Embedding) {
		t.Error("same text should embed the same, different texts differently")
	}
	// batchEmbedContents reports no token counts.
	if resp.Usage != (schema.Usage{}) {
		t.Errorf("usage = %+v", resp.Usage)
	}
}

func TestEmbed_DimensionsBecomeOutputDimensionality(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	req := &schema.Request{Input: schema.InputList{"x"}, Dimensions: ptr(16)}
	resp, err := embedProvider(t, srv).Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := srv.Requests()[0].Embed.Requests[0].OutputDimensionality; d == nil || *d != 16 {
		t.Errorf("outputDimensionality = %v", d)
	}
	if n := len(resp.Data[0].Embedding.Floats); n != 16 {
		t.Errorf("%d dimensions", n)
	}

	// More than the model has is Gemini's bad request.
	req.Dimensions = ptr(5000)
	_, err = embedProvider(t, srv).Embed(context.Background(), req)
	wantCode(t, err, schema.CodeBadRequest)
}

func TestEmbed_MoreThan100TextsGoInSeveralCalls(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{EmbedDimensions: 4})
	req := &schema.Request{}
	for i := range 250 {
		req.Input = append(req.Input, fmt.Sprintf("text %d", i))
	}
	resp, err := embedProvider(t, srv).Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, r := range srv.Requests() {
		sizes = append(sizes, len(r.Embed.Requests))
	}
	if !reflect.DeepEqual(sizes, []int{100, 100, 50}) {
		t.Errorf("batches of %v, want 100, 100, 50", sizes)
	}
	if len(resp.Data) != 250 {
		t.Fatalf("%d embeddings", len(resp.Data))
	}
	for i, d := range resp.Data {
		if d.Index != i || !reflect.DeepEqual(d.Embedding.Floats, geminitest.Vector(req.Input[i], 4)) {
			t.Fatalf("data[%d] has index %d or another text's vector", i, d.Index)
		}
	}
}

func TestEmbed_ErrorsAreClassified(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Models: []string{"other"}})
	_, err := embedProvider(t, srv).Embed(context.Background(), &schema.Request{Input: schema.InputList{"x"}})
	wantCode(t, err, schema.CodeNotFound)

	srv = geminitest.NewServer(t, geminitest.Config{Fail: geminitest.RateLimited("7s")})
	_, err = embedProvider(t, srv).Embed(context.Background(), &schema.Request{Input: schema.InputList{"x"}})
	if e := wantCode(t, err, schema.CodeRateLimited); e.RetryAfterMs != 7000 {
		t.Errorf("retry after %d ms", e.RetryAfterMs)
	}

	bad := newProvider(t, srv, func(o *provider.Options) { o.Model = embedModel; o.APIKey = "wrong" })
	_, err = bad.Embed(context.Background(), &schema.Request{Input: schema.InputList{"x"}})
	wantCode(t, err, schema.CodeAuthentication)
}
