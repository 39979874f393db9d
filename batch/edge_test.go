package batch_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/llmq/llmq/batch"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

func TestParseLine_EmbeddingsAndTheWholeChatRequest(t *testing.T) {
	t.Parallel()
	j, err := batch.ParseLine([]byte(`{"custom_id":"e1","method":"POST","url":"/v1/embeddings","body":{"model":"emb","input":["a","b"],"dimensions":4,"encoding_format":"base64"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !j.Request.IsEmbedding() || j.Tier != "emb" || len(j.Request.Input) != 2 || *j.Request.Dimensions != 4 || j.Request.EncodingFormat != "base64" {
		t.Fatalf("parsed %+v", j.Request)
	}
	j, err = batch.ParseLine([]byte(`{"custom_id":"c1","url":"/v1/chat/completions","body":{"model":"t","messages":[{"role":"user","content":[{"type":"text","text":"what is it"},{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}}]}],` +
		`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}},` +
		`"response_format":{"type":"json_object"},"seed":3,"n":1,"logprobs":true,"top_logprobs":2,"reasoning_effort":"low"}}`))
	if err != nil {
		t.Fatal(err)
	}
	r := j.Request
	if len(r.Tools) != 1 || r.ToolChoice.Function != "f" || r.ResponseFormat.Type != "json_object" || *r.Seed != 3 || !r.Messages[0].HasImages() || *r.TopLogprobs != 2 || r.ReasoningEffort != "low" {
		t.Fatalf("parsed %+v", r)
	}
	for _, c := range []struct{ line, want string }{
		{`{"custom_id":"r","url":"/v1/embeddings","body":{"model":"t","messages":[{"role":"user","content":"hi"}]}}`, "body.input: required"},
		{`{"custom_id":"r","url":"/v1/chat/completions","body":{"model":"t","input":"x"}}`, "url /v1/embeddings"},
		{`{"custom_id":"r","body":{"model":"t","input":"x"}}`, "url /v1/embeddings"},
		{`{"custom_id":"r","url":"/v1/embeddings","body":{"model":"t","input":[]}}`, "body.input: at least one"},
		{`{"custom_id":"r","url":"/v1/completions","body":{"model":"t","input":"x"}}`, "url"},
		{`{"custom_id":"r","body":{"model":"t","messages":[{"role":"tool","tool_call_id":"x","content":"y"}]}}`, "body.messages[0].tool_call_id"},
	} {
		if _, err := batch.ParseLine([]byte(c.line)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseLine(%.70s) = %v, want an error with %q", c.line, err, c.want)
		}
	}
}

func TestBatch_EmbeddingAndToolLines_WriteOpenAIBatchOutput(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	d, err := dispatcher.New(dispatcher.Config{Conn: connect(t, f.urls, "d"), Subjects: f.subjects, Tiers: []string{"tier1", "emb"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	chat, _ := sim.New(sim.Config{Name: "chat"})
	f.worker("tier1", "c", 4, chat)
	emb, _ := sim.New(sim.Config{Name: "vec"})
	w, err := worker.New(worker.Config{Conn: connect(t, f.urls, "worker-emb"), Subjects: f.subjects, Tier: "emb", Provider: emb, Model: "vec",
		Embedding: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	f.runner("r1", nil)
	c := f.client(0)

	lines := []string{
		`{"custom_id":"emb-float","url":"/v1/embeddings","body":{"model":"emb","input":["one text","two"],"dimensions":3}}`,
		`{"custom_id":"emb-b64","url":"/v1/embeddings","body":{"model":"emb","input":"one text","dimensions":3,"encoding_format":"base64"}}`,
		`{"custom_id":"tool","url":"/v1/chat/completions","body":{"model":"tier1","messages":[{"role":"user","content":"weather in Kyiv"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}}`,
		`{"custom_id":"json","body":{"model":"tier1","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"o","schema":{"type":"object","properties":{"k":{"type":"boolean"}},"required":["k"]}}}}}`,
		`{"custom_id":"wrong-kind","url":"/v1/embeddings","body":{"model":"tier1","input":"x"}}`,
	}
	var js []batch.Job
	for _, l := range lines {
		j, err := batch.ParseLine([]byte(l))
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		js = append(js, j)
	}
	submit(t, c, "mixed", slices.Values(js))
	awaitStatus(t, c, "mixed", wait, func(s *batch.Status) bool { return s.State == batch.StateCompleted })
	_, all := results(t, c, "mixed")
	got := map[string]*batch.Result{}
	for _, r := range all {
		got[r.CustomID] = r
	}
	ef, err := got["emb-float"].Embedding()
	if err != nil {
		t.Fatal(err)
	}
	if ef.Object != "list" || len(ef.Data) != 2 || len(ef.Data[0].Embedding.Floats) != 3 || ef.Routing.Tier != "emb" {
		t.Fatalf("emb-float %+v", ef)
	}
	var raw struct {
		Data []struct {
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got["emb-b64"].Response.Body, &raw); err != nil || len(raw.Data) != 1 || raw.Data[0].Embedding[0] != '"' {
		t.Fatalf("emb-b64 body %s: want the vector as a base64 string", got["emb-b64"].Response.Body)
	}
	eb, err := got["emb-b64"].Embedding()
	if err != nil || !slices.Equal(eb.Data[0].Embedding.Floats, ef.Data[0].Embedding.Floats) {
		t.Fatalf("emb-b64 %+v (%v): want the float job's first vector", eb, err)
	}
	tool, err := got["tool"].Completion()
	if err != nil {
		t.Fatal(err)
	}
	if calls := tool.ToolCalls(); len(calls) != 1 || calls[0].Function.Arguments != `{"city":"Kyiv"}` || tool.Choices[0].FinishReason != schema.FinishToolCalls {
		t.Fatalf("tool result %+v", tool.Choices)
	}
	js2, err := got["json"].Completion()
	if err != nil || js2.Text() != `{"k":true}` {
		t.Fatalf("json result %q, %v", js2.Text(), err)
	}
	if e := got["wrong-kind"].Err(); schema.CodeOf(e) != schema.CodeBadRequest || got["wrong-kind"].Response.StatusCode != 400 {
		t.Fatalf("wrong-kind result %+v: %v, want a 400 bad_request", got["wrong-kind"].Response, e)
	}
}
