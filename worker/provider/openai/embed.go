package openai

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

var _ provider.Embedder = (*Provider)(nil)

// embeddingRequest is the body of POST /embeddings. The adapter always
// asks for floats: the worker encodes them as the producer asked.
type embeddingRequest struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	Dimensions     *int     `json:"dimensions,omitempty"`
	EncodingFormat string   `json:"encoding_format"`
	User           string   `json:"user,omitempty"`
}

// embeddingReply is OpenAI's answer; embeddings may come in any order,
// each with its input's index.
type embeddingReply struct {
	Data []struct {
		Index     int           `json:"index"`
		Embedding schema.Vector `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage *struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// Embed sends an embedding job to {api_base}/embeddings (an Endpoint's
// EmbeddingsURL) and returns one vector per input, in input order.
func (p *Provider) Embed(ctx context.Context, req *schema.Request) (*schema.EmbeddingResponse, error) {
	if !req.IsEmbedding() || len(req.Input) == 0 {
		return nil, p.named(schema.NewError(schema.CodeBadRequest, "input: an embedding job needs at least one input"))
	}
	if p.embedEndpoint == "" {
		return nil, p.named(schema.NewError(schema.CodeBadRequest, "embeddings are not configured for this endpoint"))
	}
	ctx, cancel := provider.CallContext(ctx, p.opts.Timeout)
	defer cancel()
	body := &embeddingRequest{Model: p.opts.Model, Input: req.Input, Dimensions: req.Dimensions,
		EncodingFormat: schema.EncodingFloat, User: req.User}
	resp, err := p.postTo(ctx, p.embedEndpoint, body, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, p.statusError(resp)
	}
	data, err := io.ReadAll(provider.LimitReader(resp.Body, p.opts.MaxReplyBytes, "reply"))
	if err != nil {
		return nil, p.transportError(ctx, err)
	}
	var r embeddingReply
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, p.named(schema.Errorf(schema.CodeProviderError, "malformed embeddings reply (%d bytes): %v", len(data), err))
	}
	if hasError(r.Error) {
		return nil, p.apiError(0, resp.Header, data)
	}
	return p.embeddings(req, &r)
}

// embeddings puts the vectors in input order; a reply without exactly one
// vector per input is a provider_error.
func (p *Provider) embeddings(req *schema.Request, r *embeddingReply) (*schema.EmbeddingResponse, error) {
	if len(r.Data) != len(req.Input) {
		return nil, p.named(schema.Errorf(schema.CodeProviderError, "embeddings reply has %d vectors for %d inputs", len(r.Data), len(req.Input)))
	}
	out := &schema.EmbeddingResponse{Object: schema.ObjectList, Data: make([]schema.Embedding, len(r.Data)), Model: r.Model}
	if out.Model == "" {
		out.Model = p.opts.Model
	}
	seen := make([]bool, len(r.Data))
	for _, d := range r.Data {
		if d.Index < 0 || d.Index >= len(seen) || seen[d.Index] {
			return nil, p.named(schema.Errorf(schema.CodeProviderError, "embeddings reply has a missing, repeated or out-of-range index %d", d.Index))
		}
		seen[d.Index] = true
		out.Data[d.Index] = schema.Embedding{Object: schema.ObjectEmbedding, Index: d.Index, Embedding: d.Embedding}
	}
	if r.Usage != nil {
		out.Usage = schema.Usage{PromptTokens: r.Usage.PromptTokens, TotalTokens: r.Usage.TotalTokens}
		if out.Usage.TotalTokens < out.Usage.PromptTokens {
			out.Usage.TotalTokens = out.Usage.PromptTokens
		}
	}
	return out, nil
}
