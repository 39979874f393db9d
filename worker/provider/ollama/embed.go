package ollama

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

var _ provider.Embedder = (*Provider)(nil)

// embedRequest is the body of POST /api/embed. Truncate and keep_alive are
// left to the host's defaults (inputs longer than the context are cut).
type embedRequest struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions *int     `json:"dimensions,omitempty"`
}

// embedResponse is the reply of POST /api/embed.
type embedResponse struct {
	Model           string      `json:"model"`
	Embeddings      [][]float32 `json:"embeddings"`
	PromptEvalCount int         `json:"prompt_eval_count"`
	Error           any         `json:"error"`
}

// Embed embeds the texts of an embedding job (req.Input) with one call to
// POST /api/embed and returns one vector per text, in order, with
// prompt_eval_count as the prompt tokens. dimensions is passed on (Ollama
// cuts and renormalises the vectors); encoding_format is the worker's.
func (p *Provider) Embed(ctx context.Context, req *schema.Request) (*schema.EmbeddingResponse, error) {
	if req == nil || len(req.Input) == 0 {
		return nil, schema.NewError(schema.CodeBadRequest, "ollama: input: at least one text is required")
	}
	if len(req.Messages) > 0 {
		return nil, schema.NewError(schema.CodeBadRequest, "ollama: input: an embedding job has no messages")
	}
	if d := req.Dimensions; d != nil && *d < 1 {
		return nil, schema.Errorf(schema.CodeBadRequest, "ollama: dimensions: must be at least 1, got %d", *d)
	}
	body := &embedRequest{Model: p.model, Input: req.Input, Dimensions: req.Dimensions}
	ctx, cancel := provider.CallContext(ctx, p.o.Timeout)
	defer cancel()
	resp, err := provider.PostJSON(ctx, p.o.HTTP, p.embedURL, p.headers("application/json"), body)
	if err != nil {
		return nil, p.clean(schema.AsError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, p.httpError(resp)
	}
	var r embedResponse
	if err := json.NewDecoder(provider.LimitReader(resp.Body, p.o.MaxReplyBytes, "reply")).Decode(&r); err != nil {
		return nil, p.readError(ctx, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if msg := errorText(r.Error); msg != "" {
		return nil, p.clean(bodyError("reply", msg))
	}
	if len(r.Embeddings) != len(req.Input) {
		return nil, schema.Errorf(schema.CodeProviderError,
			"ollama: reply has %d embeddings for %d inputs", len(r.Embeddings), len(req.Input))
	}
	out := &schema.EmbeddingResponse{Object: schema.ObjectList, Model: r.Model,
		Data:  make([]schema.Embedding, len(r.Embeddings)),
		Usage: schema.Usage{PromptTokens: r.PromptEvalCount, TotalTokens: r.PromptEvalCount}}
	if out.Model == "" {
		out.Model = p.model
	}
	for i, v := range r.Embeddings {
		if len(v) == 0 {
			return nil, schema.Errorf(schema.CodeProviderError, "ollama: reply's embedding %d is empty", i)
		}
		out.Data[i] = schema.Embedding{Object: schema.ObjectEmbedding, Index: i, Embedding: schema.Vector{Floats: v}}
	}
	return out, nil
}
