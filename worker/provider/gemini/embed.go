package gemini

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// maxEmbedBatch is the most requests one batchEmbedContents call takes.
const maxEmbedBatch = 100

// Embed embeds req.Input with batchEmbedContents, in calls of at most 100
// texts (the API's limit), and returns the vectors in input order.
// Dimensions becomes outputDimensionality. Gemini reports no token counts
// for embeddings, so Usage stays 0.
func (p *Provider) Embed(ctx context.Context, req *schema.Request) (*schema.EmbeddingResponse, error) {
	if len(req.Input) == 0 {
		return nil, schema.Errorf(schema.CodeBadRequest, "%s: input: at least one text is required", name)
	}
	ctx, cancel := provider.CallContext(ctx, p.opts.Timeout)
	defer cancel()
	out := &schema.EmbeddingResponse{Object: schema.ObjectList, Model: p.model,
		Data: make([]schema.Embedding, 0, len(req.Input))}
	for start := 0; start < len(req.Input); start += maxEmbedBatch {
		batch := req.Input[start:min(start+maxEmbedBatch, len(req.Input))]
		vecs, err := p.embedBatch(ctx, batch, req.Dimensions)
		if err != nil {
			return nil, err
		}
		for i, v := range vecs {
			out.Data = append(out.Data, schema.Embedding{Object: schema.ObjectEmbedding, Index: start + i,
				Embedding: schema.Vector{Floats: v}})
		}
	}
	return out, nil
}

// embedBatch makes one batchEmbedContents call.
func (p *Provider) embedBatch(ctx context.Context, texts []string, dims *int) ([][]float32, error) {
	body := batchEmbedRequest{Requests: make([]embedContentRequest, len(texts))}
	for i, t := range texts {
		body.Requests[i] = embedContentRequest{Model: "models/" + p.model,
			Content: content{Parts: []part{{Text: t}}}, OutputDimensionality: dims}
	}
	resp, err := provider.PostJSON(ctx, p.opts.HTTP, p.embedURL, p.headers(), body)
	if err != nil {
		return nil, p.named(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, p.httpError(resp)
	}
	defer resp.Body.Close()
	var out batchEmbedResponse
	if err := json.NewDecoder(provider.LimitReader(resp.Body, p.opts.MaxReplyBytes, "reply")).Decode(&out); err != nil {
		return nil, p.readError(ctx, "reply", err)
	}
	if out.Error != nil {
		return nil, p.classify(0, nil, out.Error)
	}
	if len(out.Embeddings) != len(texts) {
		return nil, schema.Errorf(schema.CodeProviderError, "%s: reply has %d embeddings for %d texts", name, len(out.Embeddings), len(texts))
	}
	vecs := make([][]float32, len(texts))
	for i, e := range out.Embeddings {
		if len(e.Values) == 0 {
			return nil, schema.Errorf(schema.CodeProviderError, "%s: reply has an empty embedding at %d", name, i)
		}
		vecs[i] = e.Values
	}
	return vecs, nil
}
