package batch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/llmq/llmq/batch"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

func TestParseLine(t *testing.T) {
	t.Parallel()
	good := `{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"tier1","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true}}`
	j, err := batch.ParseLine([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if j.CustomID != "r1" || j.Tier != "tier1" || j.Request.Limit() != 5 || j.Request.Stream {
		t.Fatalf("parsed %+v %+v", j, j.Request)
	}
	for _, c := range []struct{ line, want string }{
		{`not json`, "not a JSON object"},
		{`{"custom_id":"r","body":{"model":"t","messages":[]}} x`, "trailing data"},
		{`{"custom_id":"","body":{"model":"t","messages":[{"role":"user","content":"hi"}]}}`, "custom_id: required"},
		{`{"custom_id":"r","method":"GET","body":{"model":"t","messages":[{"role":"user","content":"hi"}]}}`, "method"},
		{`{"custom_id":"r","url":"/v1/embeddings","body":{"model":"t","messages":[{"role":"user","content":"hi"}]}}`, "url"},
		{`{"custom_id":"r"}`, "body: required"},
		{`{"custom_id":"r","body":{"messages":[{"role":"user","content":"hi"}]}}`, "body.model: required"},
		{`{"custom_id":"r","body":{"model":"a b","messages":[{"role":"user","content":"hi"}]}}`, "not a valid tier"},
		{`{"custom_id":"r","body":{"model":"t","messages":[]}}`, "body.messages"},
		{`{"custom_id":"r","body":{"model":"t","messages":[{"role":"user","content":"hi"}],"max_tokens":"5"}}`, "body:"},
		{`{"custom_id":"` + strings.Repeat("x", batch.MaxCustomIDLen+1) + `","body":{"model":"t","messages":[{"role":"user","content":"hi"}]}}`, "custom_id:"},
	} {
		if _, err := batch.ParseLine([]byte(c.line)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseLine(%.60s) = %v, want an error with %q", c.line, err, c.want)
		}
	}
}

// A batch runs to one result per job; submitting it again stores nothing
// and runs nothing; and jobs put back in the stream without the submit
// check (as after a lost dedupe) are not run again either.
func TestBatch_ResubmitRunsNoJobTwice(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	f.dispatcher("d1")
	p := newCounter()
	f.worker("tier1", "a", 4, p)
	f.worker("tier1", "b", 4, p)
	f.runner("r1", nil)
	c := f.client(0)
	const n = 500
	rep := submit(t, c, "b1", jobs(n, "tier1"))
	if rep.Submitted != n || rep.Duplicates != 0 || len(rep.Rejected) != 0 {
		t.Fatalf("first submit: %+v", rep)
	}
	s := awaitStatus(t, c, "b1", wait, func(s *batch.Status) bool { return s.State == batch.StateCompleted })
	if s.Total != n || s.Done != n || s.Failed != 0 || s.Pending != 0 {
		t.Fatalf("status %+v", s)
	}
	exactlyOnce(t, c, "b1", n)
	// Delivery is at least once: on a loaded machine a dispatcher may take
	// a late-beating worker for lost and send its jobs again. From here on
	// nothing may run.
	calls := p.total.Load()
	if calls < n {
		t.Fatalf("%d provider calls for %d jobs", calls, n)
	}

	rep = submit(t, c, "b1", jobs(n, "tier1"))
	if rep.Submitted != 0 || rep.Duplicates != n {
		t.Fatalf("second submit: %+v, want all %d duplicates", rep, n)
	}

	// Put every job back as a new message (purge, publish again): the
	// runners find the results and ack without calling anyone.
	nc := connect(t, f.urls, "raw")
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stream, err := js.Stream(ctx, strings.ReplaceAll(f.subjects.Prefix, ".", "_")+"_batch_jobs")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	rep = submit(t, c, "b1", jobs(n, "tier1"))
	if rep.Submitted != n {
		t.Fatalf("submit after purge: %+v", rep)
	}
	// The consumer's pending count drops to zero once runners saw them all.
	deadline := time.Now().Add(wait)
	for {
		ci, err := js.Consumer(ctx, stream.CachedInfo().Config.Name, consumerFor(t, stream, ctx))
		if err == nil {
			info, err := ci.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("runners did not go through the re-published jobs")
		}
		time.Sleep(20 * time.Millisecond) // polling a snapshot
	}
	if got := p.total.Load(); got != calls {
		t.Fatalf("%d provider calls after resubmits, want still %d", got, calls)
	}
	exactlyOnce(t, c, "b1", n)
}

func consumerFor(t *testing.T, s jetstream.Stream, ctx context.Context) string {
	t.Helper()
	names := s.ConsumerNames(ctx)
	for n := range names.Name() {
		if strings.HasPrefix(n, "runner_") {
			return n
		}
	}
	return "none"
}

// Retryable failures are retried up to max_deliver and then stored as a
// dead-letter result; a non-retryable one is the result at once.
func TestBatch_FailuresBecomeResults(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	f.dispatcher("d1")
	var calls atomic.Int64
	f.worker("tier1", "a", 4, provider.Func(func(_ context.Context, req *schema.Request) (*schema.Response, error) {
		calls.Add(1)
		text := string(req.Messages[0].Content)
		switch {
		case strings.HasSuffix(text, "-retry"):
			return nil, schema.NewError(schema.CodeProviderError, "upstream 500")
		case strings.HasSuffix(text, "-policy"):
			return nil, schema.NewError(schema.CodeContentPolicy, "refused")
		}
		return reply(text), nil
	}))
	f.runner("r1", func(c *batch.RunnerConfig) { c.MaxDeliver = 3; c.Backoff = 10 * time.Millisecond })
	c := f.client(0)
	js := []batch.Job{
		{CustomID: "ok", Tier: "tier1", Request: ask("p-ok")},
		{CustomID: "retry", Tier: "tier1", Request: ask("p-retry")},
		{CustomID: "policy", Tier: "tier1", Request: ask("p-policy")},
		{CustomID: "", Tier: "tier1", Request: ask("bad")},
		{CustomID: "ok", Tier: "tier1", Request: ask("p-ok again")},
	}
	rep := submit(t, c, "fail", func(yield func(batch.Job) bool) {
		for _, j := range js {
			if !yield(j) {
				return
			}
		}
	})
	if rep.Submitted != 3 || len(rep.Rejected) != 2 || rep.Rejected[0].Index != 3 || rep.Rejected[1].Repeats != 0 ||
		!errors.Is(rep.Rejected[1].Err, batch.ErrRepeatedCustomID) {
		t.Fatalf("submit report %+v", rep)
	}
	s := awaitStatus(t, c, "fail", wait, func(s *batch.Status) bool { return s.State == batch.StateCompleted })
	if s.Done != 1 || s.Failed != 2 {
		t.Fatalf("status %+v, want 1 done and 2 failed", s)
	}
	_, all := results(t, c, "fail")
	for _, r := range all {
		switch r.CustomID {
		case "ok":
			if r.Failed() {
				t.Errorf("ok failed: %+v", r)
			}
		case "retry":
			if r.Error == nil || r.Error.Code != "max_deliver" || r.Response == nil || r.Response.StatusCode != 502 || schema.CodeOf(r.Err()) != schema.CodeProviderError {
				t.Errorf("retry result %+v", r)
			}
		case "policy":
			if r.Error != nil || r.Response.StatusCode != 400 || schema.CodeOf(r.Err()) != schema.CodeContentPolicy {
				t.Errorf("policy result %+v %s", r, r.Response.Body)
			}
		}
	}
	// ok once, policy once, retry: 3 deliveries × (1 + the dispatcher's
	// retries, none configured here) calls.
	if got := calls.Load(); got != 5 {
		t.Errorf("%d provider calls, want 5 (ok 1, policy 1, retry 3)", got)
	}
}

// Interactive jobs keep their slot while a large batch runs: the runner
// holds only as many batch jobs as the fleet has batch slots for (twice),
// and an interactive job starts ahead of every batch job still waiting.
func TestBatch_InteractiveFirst(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	d, _ := f.dispatcher("d1")
	g := newGate()
	f.worker("tier1", "a", 3, g)
	r, _ := f.runner("r1", nil)
	c := f.client(0)
	const n = 300
	submit(t, c, "big", jobs(n, "tier1"))
	// Two batch jobs run (the third slot is kept for interactive jobs).
	g.await(t, 2)
	var st batch.Stats
	deadline := time.Now().Add(wait)
	for {
		st = r.Stats()
		if st.Running["big"] == 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling a snapshot
	}
	if st.Windows["tier1"] != 4 || st.Running["big"] != 4 {
		t.Fatalf("runner %+v: want a window of 4 (2 × the 2 batch slots) and 4 batch jobs held", st)
	}
	queued := 0
	for _, ts := range d.Stats().Tiers {
		queued += ts.BatchQueued + ts.Queued
	}
	if queued > 2 {
		t.Fatalf("dispatcher holds %d jobs; the runner should hand it at most 2 beyond the running ones", queued)
	}
	// An interactive job starts now, ahead of the batch jobs waiting.
	cl := client.New(connect(t, f.urls, "interactive"), client.Config{Subjects: f.subjects, Timeout: wait})
	done := make(chan error, 1)
	go func() {
		_, err := cl.Complete(context.Background(), "tier1", ask("interactive"))
		done <- err
	}()
	if got := g.await(t, 1); got[0] != "interactive" {
		t.Fatalf("third call was %q, want the interactive job", got[0])
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	awaitStatus(t, c, "big", wait, func(s *batch.Status) bool { return s.State == batch.StateCompleted })
	exactlyOnce(t, c, "big", n)
}

// Cancelling stops jobs that have not started; the running ones finish
// and keep their results. A cancelled batch takes no more jobs.
func TestBatch_Cancel(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	f.dispatcher("d1")
	g := newGate()
	f.worker("tier1", "a", 3, g)
	f.runner("r1", nil)
	c := f.clientWaiting(0, time.Second)
	submit(t, c, "c1", jobs(100, "tier1"))
	g.await(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Cancel(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if s := awaitStatus(t, c, "c1", wait, func(*batch.Status) bool { return true }); s.State != batch.StateCancelling || s.Running == 0 {
		t.Fatalf("status right after cancel: %+v, want cancelling with jobs running", s)
	}
	close(g.release)
	s := awaitStatus(t, c, "c1", wait, func(s *batch.Status) bool { return s.State == batch.StateCancelled })
	g.mu.Lock()
	calls := len(g.order)
	g.mu.Unlock()
	if s.Done != calls || s.Done < 2 || s.Done > 4 || s.Total != 100 {
		t.Fatalf("status %+v after %d calls: want the 2 to 4 jobs that had started, done", s, calls)
	}
	if _, err := c.Submit(ctx, "c1", jobs(1, "tier1")); !errors.Is(err, batch.ErrCancelled) {
		t.Fatalf("submit to a cancelled batch: %v", err)
	}
	if err := c.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, "c1"); !errors.Is(err, batch.ErrNotFound) {
		t.Fatalf("status of a deleted batch: %v", err)
	}
}

func TestBatch_NoJetStream(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := batch.Open(ctx, batch.Config{Conn: srv.Connect("p")})
	if !errors.Is(err, batch.ErrNoJetStream) {
		t.Fatalf("Open without JetStream: %v", err)
	}
	_ = fmt.Sprint()
}
