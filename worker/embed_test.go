package worker_test

import (
	"context"
	"encoding/base64"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/sim"
)

// embedder is a chat provider that also embeds: vector i of a job is
// [len(text i), i], and each call is counted.
type embedder struct {
	echo
	calls atomic.Int64
	fail  error
}

func (p *embedder) Embed(_ context.Context, req *schema.Request) (*schema.EmbeddingResponse, error) {
	p.calls.Add(1)
	if p.fail != nil {
		return nil, p.fail
	}
	out := &schema.EmbeddingResponse{Data: make([]schema.Embedding, len(req.Input))}
	for i, s := range req.Input {
		out.Data[i].Embedding.Floats = []float32{float32(len(s)), float32(i)}
	}
	out.Usage.PromptTokens = 7
	return out, nil
}

func embedJob(texts ...string) *schema.Request {
	return &schema.Request{Input: texts}
}

func embedding(mod ...func(*worker.Config)) func(*worker.Config) {
	return func(c *worker.Config) {
		c.Embedding = true
		for _, m := range mod {
			m(c)
		}
	}
}

func TestWorker_EmbeddingJob_RepliesVectorsWithObjectsModelUsageAndCost(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &embedder{}
	w := e.worker(p, embedding(func(c *worker.Config) { c.InputCostPerToken, c.OutputCostPerToken = 0.5, 100 }))
	m := e.request(job(t, w, embedJob("abc", "de")))
	resp, err := schema.DecodeEmbeddingReply(broker.CodecOf(m), m.Data, broker.IsError(m))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Object != schema.ObjectList || resp.Model != modelName || len(resp.Data) != 2 {
		t.Fatalf("reply %+v: want a list of 2 of model %s", resp, modelName)
	}
	for i, want := range [][]float32{{3, 0}, {2, 1}} {
		d := resp.Data[i]
		if d.Object != schema.ObjectEmbedding || d.Index != i || len(d.Embedding.Floats) != 2 || d.Embedding.Floats[0] != want[0] || d.Embedding.Floats[1] != want[1] {
			t.Errorf("data[%d] = %+v, want embedding %v at index %d", i, d, want, i)
		}
	}
	if resp.Usage.PromptTokens != 7 || resp.Usage.TotalTokens != 7 || resp.Usage.CompletionTokens != 0 {
		t.Errorf("usage %+v: want 7 prompt, 7 total", resp.Usage)
	}
	if r := resp.Routing; r == nil || r.CostUSD != 3.5 || r.Deployment != deployment || r.Provider != provName {
		t.Errorf("routing %+v: want cost 0.5 × 7 = 3.5 on %s", r, deployment)
	}
}

func TestWorker_EmbeddingJob_Base64EncodingIsLittleEndianFloat32s(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(&embedder{}, embedding())
	req := embedJob("abcd")
	req.EncodingFormat = schema.EncodingBase64
	m := job(t, w, req)
	m.Header.Set(schema.HeaderContentType, schema.ContentTypeJSON)
	m.Data, _ = schema.JSON.Marshal(req)
	reply := e.request(m)
	if broker.IsError(reply) {
		t.Fatalf("error reply %s", reply.Data)
	}
	// On the wire the vector is a base64 string, as OpenAI's.
	i := strings.Index(string(reply.Data), `"embedding":"`)
	if i < 0 {
		t.Fatalf("reply %s: no base64 embedding", reply.Data)
	}
	s := string(reply.Data)[i+len(`"embedding":"`):]
	s = s[:strings.IndexByte(s, '"')]
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 8 {
		t.Fatalf("embedding %q: %v, want 8 bytes", s, err)
	}
	if f := math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24); f != 4 {
		t.Fatalf("first float %v, want 4", f)
	}
}

func TestWorker_WrongKindOfJob_IsBadRequestWithoutCallOrCooldown(t *testing.T) {
	t.Parallel()
	e := setup(t)
	emb := &embedder{}
	ew := e.worker(emb, embedding(func(c *worker.Config) { c.Cooldown.AllowedFails = 1 }))
	for range 3 {
		err := decodeError(t, e.request(job(t, ew, ask("hello"))))
		if err.Code != schema.CodeBadRequest || !strings.Contains(err.Message, "serves embeddings") || !strings.Contains(err.Message, "messages") {
			t.Fatalf("chat job to an embedding worker: %v, want bad_request naming messages", err)
		}
	}
	if n := emb.calls.Load(); n != 0 {
		t.Fatalf("%d provider calls for refused jobs", n)
	}
	// No cooldown: the worker still serves.
	if m := e.request(job(t, ew, embedJob("x"))); broker.IsError(m) {
		t.Fatalf("after refusals: %s", m.Data)
	}
	cw := e.newWorker(&embedder{}, func(c *worker.Config) { c.ID = "chat-1" })
	if err := cw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cw.Stop(context.Background()) })
	err := decodeError(t, e.request(job(t, cw, embedJob("x"))))
	if err.Code != schema.CodeBadRequest || !strings.Contains(err.Message, "input: tier") || !strings.Contains(err.Message, "not embeddings") {
		t.Fatalf("embedding job to a chat worker: %v, want bad_request naming input", err)
	}
}

func TestWorker_Embedding_ProviderWithoutEmbedderRefusedAtNew(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, err := worker.New(worker.Config{Conn: e.nc, Tier: tier, Provider: &echo{}, Embedding: true})
	if err == nil || !strings.Contains(err.Error(), "cannot embed") {
		t.Fatalf("err %v, want cannot embed", err)
	}
}

func TestWorker_ImageOverConfiguredLimit_IsBadRequestNamingThePart(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &embedder{}
	w := e.worker(p, func(c *worker.Config) { c.Limits.MaxImageBytes = 16 })
	img := func(n int) *schema.Request {
		return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Parts: []schema.ContentPart{
			{Type: schema.PartText, Text: "what is it?"},
			{Type: schema.PartImageURL, ImageURL: &schema.ImageURL{URL: "data:image/png;base64," + base64.StdEncoding.EncodeToString(make([]byte, n))}},
		}}}}
	}
	err := decodeError(t, e.request(job(t, w, img(64))))
	if err.Code != schema.CodeBadRequest || !strings.Contains(err.Message, "messages[0].content[1].image_url.url") || !strings.Contains(err.Message, "limit of 16") {
		t.Fatalf("err %v: want bad_request naming messages[0].content[1] and the limit", err)
	}
	if m := e.request(job(t, w, img(12))); broker.IsError(m) {
		t.Fatalf("image under the limit: %s", m.Data)
	}
}

func TestWorker_EmbeddingFallback_FailingTierFallsBackToAnotherEmbeddingTier(t *testing.T) {
	t.Parallel()
	e := setup(t)
	bad, err := sim.New(sim.Config{Name: "bad", ErrorRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	good, err := sim.New(sim.Config{Name: "good"})
	if err != nil {
		t.Fatal(err)
	}
	e.worker(bad, embedding(func(c *worker.Config) { c.Tier, c.Deployment, c.Cooldown.Disabled = "emb-a", "a", true }))
	e.worker(good, embedding(func(c *worker.Config) { c.Tier, c.Deployment = "emb-b", "b" }))
	d, err := dispatcher.New(dispatcher.Config{Conn: e.srv.Connect("dispatcher"), Subjects: e.subjects, Tiers: []string{"emb-a", "emb-b"},
		Policy: dispatcher.Policy{NumRetries: 1, BackoffInitial: time.Millisecond, Fallbacks: map[string][]string{"emb-a": {"emb-b"}}}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, tr := range []string{"emb-a", "emb-b"} {
		if err := d.WaitWorkers(ctx, tr, 1); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := e.client().Embed(ctx, "emb-a", embedJob("one", "two"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "good" || resp.Routing.Tier != "emb-b" || resp.Routing.Attempts < 2 || len(resp.Data) != 2 || len(resp.Data[1].Embedding.Floats) != sim.DefaultDimensions {
		t.Fatalf("reply model %s routing %+v, %d vectors: want emb-b's after emb-a failed", resp.Model, resp.Routing, len(resp.Data))
	}
}

func TestWorker_Stream_ToolCallPiecesReachTheProducerAndLastChunkSaysToolCalls(t *testing.T) {
	t.Parallel()
	e := setup(t)
	call := schema.ToolCall{ID: "call_1", Type: "function", Function: schema.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}
	w := e.worker(streamFunc(func(_ context.Context, _ *schema.Request, emit provider.Emit) (*schema.Response, error) {
		for _, d := range []schema.ToolCallDelta{
			{Index: 0, ID: call.ID, Type: "function", Function: schema.FunctionCallDelta{Name: call.Function.Name}},
			{Index: 0, Function: schema.FunctionCallDelta{Arguments: `{"city":`}},
			{Index: 0, Function: schema.FunctionCallDelta{Arguments: `"Paris"}`}},
		} {
			if err := emit(schema.ChunkChoice{Delta: schema.Delta{ToolCalls: []schema.ToolCallDelta{d}}}); err != nil {
				return nil, err
			}
		}
		return &schema.Response{Choices: []schema.Choice{{Message: schema.Message{Role: "assistant", ToolCalls: []schema.ToolCall{call}},
			FinishReason: schema.FinishToolCalls}}, Usage: schema.Usage{PromptTokens: 3, CompletionTokens: 5}}, nil
	}))
	req := ask("weather?")
	req.Tools = []schema.Tool{{Type: "function", Function: schema.Function{Name: "get_weather"}}}
	msgs := e.stream(w, req).collect(t)
	if len(msgs) != 4 {
		t.Fatalf("%d messages, want 3 pieces and the end", len(msgs))
	}
	var pieces []schema.ToolCallDelta
	for i, m := range msgs {
		var c schema.Chunk
		if err := broker.CodecOf(m).Unmarshal(m.Data, &c); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if c.Choices[0].FinishReason != nil {
				t.Errorf("piece %d has a finish reason", i)
			}
			pieces = append(pieces, c.Choices[0].Delta.ToolCalls...)
			continue
		}
		if fr := c.Choices[0].FinishReason; fr == nil || *fr != schema.FinishToolCalls || c.Usage == nil || c.Usage.CompletionTokens != 5 {
			t.Fatalf("last chunk %+v: want finish tool_calls with usage", c)
		}
	}
	if len(pieces) != 3 || pieces[0].ID != "call_1" || pieces[0].Function.Name != "get_weather" || pieces[1].Function.Arguments+pieces[2].Function.Arguments != call.Function.Arguments {
		t.Fatalf("pieces %+v: want the call's id and name, then its arguments in two fragments", pieces)
	}
}

func TestWorker_Heartbeat_EmbeddingWorkerSaysItsMode(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	e.worker(&embedder{}, embedding())
	if hb := nextBeat(t, beats); hb.Mode != schema.ModeEmbedding {
		t.Fatalf("beat mode %q, want embedding", hb.Mode)
	}
	e.worker(&echo{}, func(c *worker.Config) { c.ID = "chat-2" })
	hb := awaitBeat(t, beats, "a beat of chat-2", func(hb schema.Heartbeat) bool { return hb.Worker == "chat-2" })
	if hb.Mode != "" {
		t.Fatalf("chat worker's beat mode %q, want none", hb.Mode)
	}
}
