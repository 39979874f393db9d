package worker

import (
	"context"
	"errors"
	"time"

	"github.com/llmq/llmq/schema"
)

// An embedding job (schema.Request.IsEmbedding: input, no messages) goes
// on the same subjects as a chat job and is routed the same way:
// dispatchers forward bodies without reading them, so strategies,
// retries, fallbacks, cooldowns and deadlines apply unchanged. Only the
// worker tells the two kinds apart: a worker of an embedding deployment
// (Config.Embedding) serves embedding jobs only, any other worker chat
// jobs only (kind).

// kind refuses a job of the kind the worker does not serve: a bad_request
// answered at once, never retried in the tier (it would fail on every
// deployment of it) and no failure of the deployment (no cooldown).
func (w *Worker) kind(req *schema.Request) error {
	switch {
	case req.IsEmbedding() && !w.cfg.Embedding:
		return schema.Errorf(schema.CodeBadRequest,
			"input: tier %q serves chat completions (deployment %s), not embeddings: send messages, or send input to a tier of model_info.mode embedding",
			w.cfg.Tier, w.cfg.Deployment)
	case !req.IsEmbedding() && w.cfg.Embedding:
		return schema.Errorf(schema.CodeBadRequest,
			"messages: tier %q serves embeddings (deployment %s has model_info.mode embedding), not chat completions: send input (/v1/embeddings)",
			w.cfg.Tier, w.cfg.Deployment)
	}
	return nil
}

// embed runs an embedding job: one provider call (made again up to
// MaxRetries times, as a chat call is), the reply completed with what
// llmq owns (completeEmbedding), or the failure handled as a chat call's
// (fail: cooldown, bounce for a retry elsewhere).
func (w *Worker) embed(ctx context.Context, c *call, req *schema.Request, routing *schema.Routing) {
	m := c.m
	start := time.Now()
	resp, err := retried(w, ctx, func() (*schema.EmbeddingResponse, error) { return w.embedder.Embed(ctx, req) })
	routing.CallMs = ms(time.Since(start))
	if err == nil && len(resp.Data) != len(req.Input) {
		err = schema.Errorf(schema.CodeProviderError, "the provider returned %d embeddings for %d inputs", len(resp.Data), len(req.Input))
	}
	var u *schema.Usage
	if resp != nil {
		u = &resp.Usage
	}
	w.spent(c, u, err)
	if errors.Is(context.Cause(ctx), errProducerGone) {
		w.jobFailed(schema.CodeCancelled)
		w.log.Debug("job cancelled: producer stopped listening")
		return
	}
	if err != nil {
		w.fail(ctx, c, err)
		return
	}
	w.window.add(routing.CallMs, 0)
	w.completeEmbedding(resp, req, routing)
	w.replyDone(m, c, resp, routing, resp.Usage)
}

// completeEmbedding fills the fields of an embedding reply that llmq
// owns: object names, indexes, the model, total tokens, the encoding the
// job asked for (base64 or floats), and the routing block with the cost
// (input_cost_per_token × prompt tokens).
func (w *Worker) completeEmbedding(resp *schema.EmbeddingResponse, req *schema.Request, routing *schema.Routing) {
	resp.Object = schema.ObjectList
	if resp.Model == "" {
		resp.Model = routing.Model
	}
	for i := range resp.Data {
		d := &resp.Data[i]
		d.Object = schema.ObjectEmbedding
		d.Index = i
		d.Embedding.Encode(req.EncodingFormat)
	}
	resp.Usage.CompletionTokens = 0
	if resp.Usage.TotalTokens == 0 {
		resp.Usage.TotalTokens = resp.Usage.PromptTokens
	}
	routing.CostUSD = w.cost(resp.Usage)
	resp.Routing = routing
}
