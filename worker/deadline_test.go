package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// slowOn is a provider that answers at once, except that a job whose last
// message is "slow" runs until its ctx ends.
type slowOn struct{ slow chan struct{} }

func (p *slowOn) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	if string(req.Messages[len(req.Messages)-1].Content) != "slow" {
		return text("fast", 1, 1), nil
	}
	select {
	case p.slow <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, provider.TransportError(ctx, ctx.Err())
}

// rawJob is a job as a raw producer sends it to the tier's subject. hdr are
// pairs of header key and value.
func (e *env) rawJob(req *schema.Request, hdr ...string) *nats.Msg {
	e.t.Helper()
	data, err := schema.MsgPack.Marshal(req)
	if err != nil {
		e.t.Fatal(err)
	}
	m := &nats.Msg{Subject: e.subjects.Jobs(tier), Data: data, Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeMsgPack}}}
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	return m
}

// Finding 8 of issue 10: three jobs whose producer gave them 200 ms put a
// healthy deployment in a 5 s cooldown, and every other producer got
// cooling_down. The job's own deadline passing is not the deployment's
// failure.
func TestWorker_ProducerDeadlinePasses_DoesNotCoolTheDeployment(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatcher()
	p := &slowOn{slow: make(chan struct{}, 1)}
	w := e.worker(p, func(c *worker.Config) { c.Cooldown = worker.Cooldown{AllowedFails: 3, Time: time.Minute} })
	waitWorkers(t, d, 1)

	for i := range 3 {
		reply := e.request(e.rawJob(ask("slow"), schema.HeaderTimeout, "200"))
		if got := decodeError(t, reply); got.Code != schema.CodeTimeout {
			t.Fatalf("job %d: error %+v, want timeout", i, got)
		}
	}
	if until, reason := w.Cooling(); !until.IsZero() {
		t.Fatalf("the deployment cools until %v (%s) after jobs whose producers' deadlines passed", until, reason)
	}
	// Another producer is served.
	reply := e.request(e.rawJob(ask("fast"), schema.HeaderTimeout, "20000"))
	if resp := decodeResponse(t, reply); resp.Text() != "fast" {
		t.Fatalf("text %q", resp.Text())
	}
	if hb := w.Heartbeat(); hb.CoolingUntilMs != 0 {
		t.Fatalf("beat says cooling until %d", hb.CoolingUntilMs)
	}
}

// The same jobs sent to the worker directly (a Llmq-Deadline 200 ms
// ahead) are answered timeout by the worker itself, and streamed ones too.
func TestWorker_ProducerDeadlinePasses_DirectAndStreamed_AnsweredTimeoutNotCounted(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ended := make(chan error, 8)
	w := e.worker(holdStream(ended), func(c *worker.Config) { c.Cooldown = worker.Cooldown{AllowedFails: 2, Time: time.Minute} })
	for i := range 2 {
		reply := e.request(job(t, w, ask("x"), schema.HeaderDeadline, deadlineIn(200*time.Millisecond)))
		if got := decodeError(t, reply); got.Code != schema.CodeTimeout {
			t.Fatalf("job %d: error %+v, want timeout", i, got)
		}
		in := e.stream(w, ask("x"), schema.HeaderDeadline, deadlineIn(200*time.Millisecond))
		if se := endError(t, in); se.Code != schema.CodeTimeout {
			t.Fatalf("stream %d ended with %+v, want timeout", i, se)
		}
	}
	if until, reason := w.Cooling(); !until.IsZero() {
		t.Fatalf("the deployment cools until %v (%s)", until, reason)
	}
}

// A job that came through a dispatcher and whose deadline passed is
// answered timeout by the worker, not bounced to <prefix>.retry for a
// retry that cannot happen.
func TestWorker_ProducerDeadlinePasses_NotBouncedForRetry(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &slowOn{slow: make(chan struct{}, 1)}
	w := e.worker(p)
	bounces := make(chan *nats.Msg, 4)
	sub, err := e.nc.ChanSubscribe(e.subjects.Retry(), bounces)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	reply := e.request(job(t, w, ask("slow"), schema.HeaderDispatcher, "d-test", schema.HeaderJobSeq, "1",
		schema.HeaderDeadline, deadlineIn(200*time.Millisecond)))
	if got := decodeError(t, reply); got.Code != schema.CodeTimeout {
		t.Fatalf("error %+v, want timeout", got)
	}
	select {
	case b := <-bounces:
		t.Fatalf("job bounced for retry after its deadline: %v", b.Header)
	default:
	}
}

// The deployment's own time-out firing before the job's deadline is the
// deployment's failure: it still counts toward a cooldown.
func TestWorker_DeploymentTimeoutFires_CountsTowardCooldown(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := &slowOn{slow: make(chan struct{}, 1)}
	w := e.worker(p, func(c *worker.Config) {
		c.Timeout = 100 * time.Millisecond
		c.Cooldown = worker.Cooldown{AllowedFails: 2, Time: time.Minute}
	})
	for i := range 2 {
		reply := e.request(job(t, w, ask("slow"), schema.HeaderDeadline, deadlineIn(wait)))
		if got := decodeError(t, reply); got.Code != schema.CodeTimeout {
			t.Fatalf("job %d: error %+v, want timeout", i, got)
		}
	}
	if until, reason := w.Cooling(); until.IsZero() || reason != schema.CodeTimeout {
		t.Fatalf("Cooling() = %v, %q; want a rest for timeout", until, reason)
	}
}

// Issue 10 finding 9: a provider reply over the size llmq reads was a
// connection_error, which the dispatcher retried, downloading it again.
// It is payload_too_large: the producer gets it after one call.
func TestWorker_ProviderReplyOverCap_AnsweredOnceNotRetried(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const limit = 1 << 20
	fake := openaitest.NewServer(t, openaitest.Config{Reply: strings.Repeat("z", 2*limit)})
	hc := provider.NewHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	p, err := openai.New(provider.Options{Model: "m", APIBase: fake.URL(), HTTP: hc, MaxReplyBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatcher.New(dispatcher.Config{Conn: e.srv.Connect("dispatcher"), Subjects: e.subjects, Tiers: []string{tier},
		Logger: quiet(), Policy: dispatcher.Policy{NumRetries: 2, BackoffInitial: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	e.worker(p)
	e.worker(p) // a second deployment a retry could go to
	waitWorkers(t, d, 2)

	reply := e.request(e.rawJob(ask("x"), schema.HeaderTimeout, "20000"))
	if got := decodeError(t, reply); got.Code != schema.CodePayloadTooLarge || !strings.Contains(got.Message, "over") {
		t.Fatalf("error %+v, want payload_too_large saying the reply is over the cap", got)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("the provider was called %d times for one job, want 1 (no retry of an over-cap reply)", n)
	}
}
