package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/sim"
)

func TestWorker_Complete_ReplyIsChatCompletionWithRouting(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// A time to first token makes the call measurably long.
	p, err := sim.New(sim.Config{Tokens: 4, TTFT: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := e.worker(p)
	m := job(t, w, ask("hello world"),
		schema.HeaderDispatcher, "d-test",
		schema.HeaderDeadline, deadlineIn(wait),
		schema.HeaderQueuedUs, "1500",
		schema.HeaderAttempt, "2")
	reply := e.request(m)
	if ct := reply.Header.Get(schema.HeaderContentType); ct != schema.ContentTypeMsgPack {
		t.Errorf("content type %q, want msgpack", ct)
	}
	resp := decodeResponse(t, reply)
	if resp.Object != schema.ObjectCompletion || resp.ID == "" || resp.Created == 0 {
		t.Errorf("reply object %q id %q created %d", resp.Object, resp.ID, resp.Created)
	}
	if got, want := resp.Text(), "hello world hello world"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].FinishReason != schema.FinishStop || resp.Choices[0].Message.Role != schema.RoleAssistant {
		t.Errorf("choices %+v", resp.Choices)
	}
	if u := resp.Usage; u.PromptTokens != 2 || u.CompletionTokens != 4 || u.TotalTokens != 6 {
		t.Errorf("usage %+v, want 2 + 4 = 6", u)
	}
	r := resp.Routing
	if r == nil {
		t.Fatal("reply has no routing")
	}
	want := schema.Routing{Tier: tier, Deployment: deployment, Worker: w.ID(), Provider: provName, Model: modelName,
		Dispatcher: "d-test", Attempts: 2, QueueMs: 1.5}
	got := *r
	got.CallMs = 0
	if got != want {
		t.Errorf("routing %+v, want %+v", got, want)
	}
	if r.CallMs < 2 {
		t.Errorf("call_ms %v, want at least the sim's 2 ms time to first token", r.CallMs)
	}
}

func TestWorker_Complete_FillsTotalTokensAndModelAProviderLeftOut(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(&echo{})
	resp := decodeResponse(t, e.request(job(t, w, ask("hi"))))
	if resp.Text() != "echo: hi" {
		t.Fatalf("text %q", resp.Text())
	}
	if resp.Usage.TotalTokens != 3 {
		t.Errorf("total tokens %d, want prompt 1 + completion 2", resp.Usage.TotalTokens)
	}
	if resp.Model != modelName || resp.ID == "" || resp.Object != schema.ObjectCompletion {
		t.Errorf("model %q id %q object %q", resp.Model, resp.ID, resp.Object)
	}
	// No dispatcher headers: one attempt, no queueing, no dispatcher named.
	if r := resp.Routing; r == nil || r.Attempts != 1 || r.QueueMs != 0 || r.Dispatcher != "" {
		t.Errorf("routing %+v", resp.Routing)
	}
}

func TestWorker_Complete_JSONJobGetsJSONReply(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(&echo{})
	m := &nats.Msg{Subject: w.Subject(), Header: nats.Header{
		schema.HeaderContentType: {schema.ContentTypeJSON},
		schema.HeaderDispatcher:  {"d-json"},
		schema.HeaderQueuedUs:    {"250"},
	}, Data: []byte(`{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}]}`)}
	reply := e.request(m)
	if ct := reply.Header.Get(schema.HeaderContentType); ct != schema.ContentTypeJSON {
		t.Fatalf("content type %q, want JSON", ct)
	}
	var body struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage   map[string]int `json:"usage"`
		Routing map[string]any `json:"routing"`
	}
	if err := json.Unmarshal(reply.Data, &body); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, reply.Data)
	}
	if body.Object != schema.ObjectCompletion || len(body.Choices) != 1 || body.Choices[0].Message.Content != "echo: hi there" ||
		body.Choices[0].Message.Role != "assistant" || body.Choices[0].FinishReason != "stop" {
		t.Errorf("reply %s", reply.Data)
	}
	if body.Usage["total_tokens"] != 3 {
		t.Errorf("usage %v", body.Usage)
	}
	if body.Routing["dispatcher"] != "d-json" || body.Routing["queue_ms"] != 0.25 || body.Routing["worker"] != w.ID() {
		t.Errorf("routing %v", body.Routing)
	}
}

func TestWorker_MaxTokensDefault_AppliesToJobsThatSetNone(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p, err := sim.New(sim.Config{Tokens: 16})
	if err != nil {
		t.Fatal(err)
	}
	w := e.worker(p, func(c *worker.Config) { c.MaxTokens = 3 })
	resp := decodeResponse(t, e.request(job(t, w, ask("a b"))))
	if resp.Text() != "a b a" || resp.Usage.CompletionTokens != 3 || resp.Choices[0].FinishReason != schema.FinishLength {
		t.Errorf("no max_tokens: text %q usage %+v finish %q; want the worker's limit of 3", resp.Text(), resp.Usage, resp.Choices[0].FinishReason)
	}
	five := 5
	req := ask("a b")
	req.MaxTokens = &five
	resp = decodeResponse(t, e.request(job(t, w, req)))
	if resp.Usage.CompletionTokens != 5 {
		t.Errorf("max_tokens 5: %d tokens; the job's own limit wins", resp.Usage.CompletionTokens)
	}
}

func TestWorker_BadInput_RepliesTypedBadRequest(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &echo{}
	w := e.worker(p)
	jsonH := nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}}
	cases := []struct {
		name   string
		header nats.Header
		body   []byte
	}{
		{"malformed json", jsonH, []byte(`{"messages":[`)},
		{"malformed msgpack", nil, []byte{0xc1, 0xff, 0x00}},
		{"wrong field type", jsonH, []byte(`{"messages":"hello"}`)},
		{"empty messages", jsonH, []byte(`{"messages":[]}`)},
		{"invalid role", jsonH, []byte(`{"messages":[{"role":"robot","content":"x"}]}`)},
		{"empty body", jsonH, nil},
	}
	for _, c := range cases {
		reply := e.request(&nats.Msg{Subject: w.Subject(), Header: c.header, Data: c.body})
		se := decodeError(t, reply)
		if se.Code != schema.CodeBadRequest || se.Status != 400 || se.Message == "" {
			t.Errorf("%s: error %+v, want bad_request 400 with a message", c.name, se)
		}
		if got := reply.Header.Get(schema.HeaderStatus); got != "400" {
			t.Errorf("%s: %s = %q", c.name, schema.HeaderStatus, got)
		}
		if got := reply.Header.Get(schema.HeaderErrorCode); got != schema.CodeBadRequest {
			t.Errorf("%s: %s = %q", c.name, schema.HeaderErrorCode, got)
		}
		if got := reply.Header.Get(schema.HeaderTier); got != tier {
			t.Errorf("%s: %s = %q", c.name, schema.HeaderTier, got)
		}
	}
	if n := p.calls.Load(); n != 0 {
		t.Fatalf("provider called %d times for bad jobs", n)
	}
	// The worker still serves after all that.
	if resp := decodeResponse(t, e.request(job(t, w, ask("still here")))); resp.Text() != "echo: still here" {
		t.Fatalf("text %q", resp.Text())
	}
	// The reply goes out before the count: poll.
	awaitHeartbeat(t, w, "every bad job failed and the good one completed", func(hb schema.Heartbeat) bool {
		return hb.Failed == uint64(len(cases)) && hb.Completed == 1
	})
}

func TestWorker_JobWithoutReplySubject_CountedAsFailedAndWorkerKeepsServing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &echo{}
	w := e.worker(p)
	if err := e.nc.PublishMsg(job(t, w, ask("nobody listens"))); err != nil {
		t.Fatal(err)
	}
	awaitHeartbeat(t, w, "one failed job", func(hb schema.Heartbeat) bool { return hb.Failed == 1 && hb.InFlight == 0 })
	if n := p.calls.Load(); n != 0 {
		t.Fatalf("provider called %d times for a job nobody can get the answer of", n)
	}
	if resp := decodeResponse(t, e.request(job(t, w, ask("still here")))); resp.Text() != "echo: still here" {
		t.Fatalf("text %q", resp.Text())
	}
	awaitHeartbeat(t, w, "one failed and one completed", func(hb schema.Heartbeat) bool { return hb.Failed == 1 && hb.Completed == 1 })
}

func TestWorker_DeadlineAlreadyPassed_RepliesTimeoutWithoutCallingProvider(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &echo{}
	w := e.worker(p)
	reply := e.request(job(t, w, ask("late"), schema.HeaderDeadline, deadlineIn(-time.Second)))
	if se := decodeError(t, reply); se.Code != schema.CodeTimeout || se.Status != 504 {
		t.Fatalf("error %+v, want timeout 504", se)
	}
	if n := p.calls.Load(); n != 0 {
		t.Fatalf("provider called %d times for an expired job", n)
	}
}

func TestWorker_DeadlinePassesDuringCall_RepliesTimeoutAndCancelsProvider(t *testing.T) {
	t.Parallel()
	e := setup(t)
	g := e.gate()
	w := e.worker(g)
	reply := e.request(job(t, w, ask("slow"), schema.HeaderDeadline, deadlineIn(200*time.Millisecond)))
	if se := decodeError(t, reply); se.Code != schema.CodeTimeout {
		t.Fatalf("error %+v, want timeout", se)
	}
	if err := g.awaitEnded(t); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("provider ctx ended with %v, want deadline exceeded", err)
	}
}

// A provider that hands back its ctx's bare error (breaking the Provider
// contract) still yields a typed timeout, not an internal error.
func TestWorker_ProviderReturnsBareCtxError_ReplyIsStillTypedTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(provider.Func(func(ctx context.Context, _ *schema.Request) (*schema.Response, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	reply := e.request(job(t, w, ask("slow"), schema.HeaderDeadline, deadlineIn(200*time.Millisecond)))
	if se := decodeError(t, reply); se.Code != schema.CodeTimeout {
		t.Fatalf("error %+v, want timeout", se)
	}
}

func TestWorker_ConfigTimeout_BoundsACall(t *testing.T) {
	t.Parallel()
	e := setup(t)
	deadlines := make(chan time.Time, 1)
	w := e.worker(provider.Func(func(ctx context.Context, _ *schema.Request) (*schema.Response, error) {
		dl, _ := ctx.Deadline()
		deadlines <- dl
		<-ctx.Done()
		return nil, provider.TransportError(ctx, ctx.Err())
	}), func(c *worker.Config) { c.Timeout = 200 * time.Millisecond })
	jobDeadline := time.Now().Add(wait)
	reply := e.request(job(t, w, ask("slow"), schema.HeaderDeadline, deadlineIn(wait)))
	if se := decodeError(t, reply); se.Code != schema.CodeTimeout {
		t.Fatalf("error %+v, want timeout", se)
	}
	// The call's deadline came from Config.Timeout, well before the job's.
	if dl := <-deadlines; dl.IsZero() || !dl.Before(jobDeadline.Add(-wait/2)) {
		t.Fatalf("call deadline %v; the job's is %v and Timeout 200ms", dl, jobDeadline)
	}
}

func TestWorker_NeverRunsMoreThanConcurrencyCallsAtOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	g := e.gate()
	w := e.worker(g, func(c *worker.Config) { c.Concurrency = 2; c.Backlog = 4 })
	var replies []<-chan reply
	for range 6 {
		replies = append(replies, e.requestAsync(job(t, w, ask("x"))))
	}
	g.awaitStarted(t, 2)
	awaitHeartbeat(t, w, "six jobs held", func(hb schema.Heartbeat) bool { return hb.InFlight == 6 })
	if n := g.running.Load(); n != 2 {
		t.Fatalf("%d calls running with all six jobs held, want Concurrency 2", n)
	}
	g.open()
	for _, ch := range replies {
		decodeResponse(t, awaitReply(t, ch))
	}
	if m := g.maxSeen.Load(); m != 2 {
		t.Fatalf("at most %d calls ran at once, want Concurrency 2", m)
	}
	if n := g.calls.Load(); n != 6 {
		t.Fatalf("%d calls, want 6", n)
	}
}

func TestWorker_BacklogFull_RepliesOverloadedWithRetryAfter(t *testing.T) {
	t.Parallel()
	e := setup(t)
	g := e.gate()
	w := e.worker(g, func(c *worker.Config) { c.Concurrency = 1; c.Backlog = 1 })
	first := e.requestAsync(job(t, w, ask("runs")))
	g.awaitStarted(t, 1)
	second := e.requestAsync(job(t, w, ask("waits")))
	awaitHeartbeat(t, w, "two jobs held", func(hb schema.Heartbeat) bool { return hb.InFlight == 2 })
	// One running and one waiting fill Concurrency 1 + Backlog 1.
	se := decodeError(t, e.request(job(t, w, ask("one too many"))))
	if se.Code != schema.CodeOverloaded || se.Status != 429 || se.RetryAfter() <= 0 {
		t.Fatalf("error %+v, want overloaded 429 with a retry-after", se)
	}
	g.open()
	for _, ch := range []<-chan reply{first, second} {
		decodeResponse(t, awaitReply(t, ch))
	}
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("%d provider calls, want 2 (the overloaded job never runs)", n)
	}
}

func TestWorker_New_RejectsIncompleteConfig(t *testing.T) {
	t.Parallel()
	e := setup(t)
	nc := e.srv.Connect("worker")
	cases := []struct {
		name string
		cfg  worker.Config
		want string
	}{
		{"no conn", worker.Config{Tier: tier, Provider: &echo{}}, "Conn"},
		{"no provider", worker.Config{Conn: nc, Tier: tier}, "Provider"},
		{"no tier", worker.Config{Conn: nc, Provider: &echo{}}, "tier"},
		{"subject wildcard tier", worker.Config{Conn: nc, Tier: "a.>", Provider: &echo{}}, "tier"},
		{"reserved tier", worker.Config{Conn: nc, Tier: "_", Provider: &echo{}}, "tier"},
		{"id of two tokens", worker.Config{Conn: nc, Tier: tier, ID: "a.b", Provider: &echo{}}, "id"},
	}
	for _, c := range cases {
		if _, err := worker.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one naming %s", c.name, err, c.want)
		}
	}
}

func TestWorker_New_DefaultsIDAndSubjectFromDeployment(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.newWorker(&echo{}, func(c *worker.Config) { c.Deployment = "ollama/qwen:7b" })
	if !strings.HasPrefix(w.ID(), "ollama_qwen_7b-") {
		t.Errorf("id %q, want the deployment as one token plus a suffix", w.ID())
	}
	if w.Subject() != e.subjects.Worker(w.ID()) {
		t.Errorf("subject %q, want %q", w.Subject(), e.subjects.Worker(w.ID()))
	}
	if hb := w.Heartbeat(); hb.Capacity != 2 || hb.State != schema.StateReady || hb.Deployment != "ollama/qwen:7b" {
		t.Errorf("heartbeat %+v", hb)
	}
}

func TestWorker_StartTwice_Errors(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(&echo{})
	if err := w.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	// The first start still serves.
	if resp := decodeResponse(t, e.request(job(t, w, ask("hi")))); resp.Text() != "echo: hi" {
		t.Fatalf("text %q", resp.Text())
	}
}

func TestWorker_StopTwice_IsSafe(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(&echo{})
	for i := range 2 {
		if err := w.Stop(context.Background()); err != nil {
			t.Fatalf("stop %d: %v", i+1, err)
		}
	}
}

func TestWorker_StopBeforeStart_IsANoOp(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.newWorker(&echo{})
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
