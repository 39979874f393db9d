package sim

import (
	"context"
	"hash/fnv"
	"math"
	"strings"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// DefaultDimensions is the length of the simulator's embeddings when the
// job asks for no dimensions.
const DefaultDimensions = 8

// MaxDimensions bounds the dimensions a job may ask the simulator for.
const MaxDimensions = 4096

// Embed returns one deterministic unit vector per input: the same text
// always gives the same vector (a hash of the text and the position), so
// tests can compare them. It takes a slot, waits TTFT and fails at
// ErrorRate like a chat call.
func (p *Provider) Embed(ctx context.Context, req *schema.Request) (*schema.EmbeddingResponse, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, provider.TransportError(ctx, ctx.Err())
	}
	defer func() { <-p.slots }()
	if err := p.failMaybe(ctx); err != nil {
		return nil, err
	}
	dims := DefaultDimensions
	if req.Dimensions != nil {
		if *req.Dimensions > MaxDimensions {
			return nil, schema.Errorf(schema.CodeBadRequest, "sim: dimensions: at most %d, got %d", MaxDimensions, *req.Dimensions)
		}
		dims = *req.Dimensions
	}
	out := &schema.EmbeddingResponse{Object: schema.ObjectList, Model: p.cfg.Name, Data: make([]schema.Embedding, len(req.Input))}
	tokens := 0
	for i, text := range req.Input {
		out.Data[i] = schema.Embedding{Object: schema.ObjectEmbedding, Index: i, Embedding: schema.Vector{Floats: vector(text, dims)}}
		tokens += len(strings.Fields(text))
	}
	out.Usage = schema.Usage{PromptTokens: tokens, TotalTokens: tokens}
	return out, nil
}

// vector is text's unit vector of dims components.
func vector(text string, dims int) []float32 {
	v := make([]float32, dims)
	var norm float64
	for i := range v {
		h := fnv.New64a()
		_, _ = h.Write([]byte{byte(i), byte(i >> 8)})
		_, _ = h.Write([]byte(text))
		x := float64(h.Sum64()>>11)/float64(1<<53)*2 - 1 // in [-1, 1)
		v[i] = float32(x)
		norm += x * x
	}
	if norm > 0 {
		n := float32(math.Sqrt(norm))
		for i := range v {
			v[i] /= n
		}
	}
	return v
}
