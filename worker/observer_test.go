package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

// reports is an Observer that hands over what it is told on channels.
type reports struct {
	jobs  chan worker.JobReport
	cools chan string
}

func newReports() *reports {
	return &reports{jobs: make(chan worker.JobReport, 64), cools: make(chan string, 64)}
}

func (r *reports) JobDone(rep worker.JobReport) { r.jobs <- rep }

func (r *reports) CooledDown(tier, deployment, reason string, rest time.Duration) {
	r.cools <- tier + "/" + deployment + "/" + reason + "/" + rest.Round(time.Second).String()
}

func (r *reports) next(t *testing.T) worker.JobReport {
	t.Helper()
	select {
	case rep := <-r.jobs:
		return rep
	case <-time.After(wait):
		t.Fatal("no job report")
	}
	return worker.JobReport{}
}

func TestObserver_ReportsEveryOutcomeWithCost(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rec := newReports()
	w := e.worker(&echo{}, func(c *worker.Config) {
		c.Observer, c.InputCostPerToken, c.OutputCostPerToken = rec, 0.5e-6, 2e-6
	})

	// Success: the reply's routing block and the report carry the cost of
	// 1 prompt token and 2 completion tokens.
	resp := decodeResponse(t, e.request(job(t, w, ask("hi"))))
	wantCost := 1*0.5e-6 + 2*2e-6
	if resp.Routing == nil || math.Abs(resp.Routing.CostUSD-wantCost) > 1e-15 {
		t.Fatalf("routing %+v, want cost_usd %g", resp.Routing, wantCost)
	}
	rep := rec.next(t)
	if rep.Outcome != worker.OutcomeOK || rep.Tier != tier || rep.Deployment != deployment ||
		rep.Usage.PromptTokens != 1 || rep.Usage.CompletionTokens != 2 || rep.Routing == nil || rep.Routing.CostUSD != resp.Routing.CostUSD {
		t.Fatalf("report %+v", rep)
	}

	// A bad body: reported with its code.
	bad := job(t, w, ask("x"))
	bad.Data = []byte{0xc1}
	decodeError(t, e.request(bad))
	if rep := rec.next(t); rep.Outcome != schema.CodeBadRequest || rep.Routing != nil {
		t.Fatalf("report %+v, want bad_request", rep)
	}

	// No reply subject: dropped.
	if err := e.nc.PublishMsg(job(t, w, ask("nobody listens"))); err != nil {
		t.Fatal(err)
	}
	if rep := rec.next(t); rep.Outcome != worker.OutcomeDropped {
		t.Fatalf("report %+v, want dropped", rep)
	}

	// The heartbeat counts the same events.
	hb := awaitHeartbeat(t, w, "1 completed and 2 failed", func(hb schema.Heartbeat) bool { return hb.Completed == 1 && hb.Failed == 2 })
	if hb.InFlight != 0 {
		t.Fatalf("heartbeat %+v", hb)
	}
}

func TestObserver_StreamAndCooldown(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rec := newReports()
	var fail atomic.Bool
	p := streamFunc(func(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
		if fail.Load() {
			return nil, schema.NewError(schema.CodeRateLimited, "slow down").WithRetryAfter(7 * time.Second)
		}
		for _, s := range []string{"a", "b"} {
			if err := emit(provider.Text(s)); err != nil {
				return nil, err
			}
		}
		return text("ab", 3, 2), nil
	})
	w := e.worker(p, func(c *worker.Config) {
		c.Observer, c.InputCostPerToken, c.OutputCostPerToken = rec, 1e-6, 1e-6
		c.Concurrency = 1
	})

	r := ask("s")
	r.Stream = true
	inbox := e.nc.NewInbox()
	ch := make(chan *nats.Msg, 16)
	sub, err := e.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	m := job(t, w, r)
	m.Reply = inbox
	if err := e.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	var last *schema.Chunk
	for last == nil {
		select {
		case msg := <-ch:
			if msg.Header.Get(schema.HeaderStream) == schema.StreamEnd {
				last = new(schema.Chunk)
				if err := schema.MsgPack.Unmarshal(msg.Data, last); err != nil {
					t.Fatal(err)
				}
			}
		case <-time.After(wait):
			t.Fatal("stream did not end")
		}
	}
	if last.Routing == nil || math.Abs(last.Routing.CostUSD-5e-6) > 1e-15 {
		t.Fatalf("last chunk routing %+v, want cost_usd 5e-6", last.Routing)
	}
	rep := rec.next(t)
	if rep.Outcome != worker.OutcomeOK || rep.Routing == nil || rep.Routing.TTFTMs <= 0 || rep.Usage.TotalTokens != 5 {
		t.Fatalf("stream report %+v (routing %+v)", rep, rep.Routing)
	}

	// A rate limit rests the deployment for the provider's 7 s.
	fail.Store(true)
	r.Stream = false
	if got := decodeError(t, e.request(job(t, w, r))); got.Code != schema.CodeRateLimited {
		t.Fatalf("error %+v", got)
	}
	if rep := rec.next(t); rep.Outcome != schema.CodeRateLimited {
		t.Fatalf("report %+v", rep)
	}
	select {
	case c := <-rec.cools:
		if c != tier+"/"+deployment+"/rate_limited/7s" {
			t.Fatalf("cooldown %q", c)
		}
	case <-time.After(wait):
		t.Fatal("no cooldown reported")
	}
	until, reason := w.Cooling()
	if reason != schema.CodeRateLimited || time.Until(until) < 5*time.Second {
		t.Fatalf("Cooling() = %v, %q", until, reason)
	}
	if in, capacity := w.Load(); in != 0 || capacity != 1 {
		t.Fatalf("Load() = %d, %d", in, capacity)
	}
}

func TestCost_OmittedWithoutPrices(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(&echo{})
	m := job(t, w, ask("hi"))
	m.Header.Set(schema.HeaderContentType, schema.ContentTypeJSON)
	m.Data = []byte(`{"messages":[{"role":"user","content":"hi"}]}`)
	reply := e.request(m)
	if !strings.Contains(string(reply.Data), `"call_ms"`) || strings.Contains(string(reply.Data), "cost_usd") {
		t.Fatalf("reply %s: want a routing block without cost_usd", reply.Data)
	}
}

func TestFromDeployment_Prices(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`model_list:
  - model_name: t
    litellm_params:
      model: sim/x
      input_cost_per_token: 0.0000025
      output_cost_per_token: 0.00001
`), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := worker.FromDeployment(&cfg.ModelList[0], &cfg.RouterSettings)
	if err != nil {
		t.Fatal(err)
	}
	if wc.InputCostPerToken != 0.0000025 || wc.OutputCostPerToken != 0.00001 {
		t.Fatalf("prices %g, %g", wc.InputCostPerToken, wc.OutputCostPerToken)
	}
}

func TestService_DiscoveryAndLatencyPercentiles(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.worker(&echo{}, func(c *worker.Config) { c.Version = "0.4.0-rc.1" })
	for range 5 {
		decodeResponse(t, e.request(job(t, w, ask("hi"))))
	}
	ping, _ := micro.ControlSubject(micro.PingVerb, worker.ServiceName, "")
	m, err := e.nc.Request(ping, nil, wait)
	if err != nil {
		t.Fatalf("$SRV.PING: %v", err)
	}
	var p micro.Ping
	if err := json.Unmarshal(m.Data, &p); err != nil {
		t.Fatal(err)
	}
	if p.Name != worker.ServiceName || p.Version != "0.4.0-rc.1" || p.Metadata["worker"] != w.ID() ||
		p.Metadata["tier"] != tier || p.Metadata["deployment"] != deployment || p.Metadata["prefix"] != e.subjects.Prefix {
		t.Fatalf("ping = %+v", p)
	}
	if want := e.subjects.Prefix + ".ctl.worker." + w.ID() + ".stats"; w.ServiceSubject() != want {
		t.Fatalf("ServiceSubject %q, want %q", w.ServiceSubject(), want)
	}
	m, err = e.nc.Request(w.ServiceSubject(), nil, wait)
	if err != nil {
		t.Fatalf("stats endpoint: %v", err)
	}
	var s worker.ServiceStats
	if err := json.Unmarshal(m.Data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Worker != w.ID() || s.Completed != 5 || s.Samples != 5 || s.Capacity != 2 || s.State != schema.StateReady ||
		s.P50Ms <= 0 || s.P99Ms < s.P90Ms || s.P90Ms < s.P50Ms {
		t.Fatalf("stats = %+v", s)
	}
	// Stopped, it is gone from discovery.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.nc.Request(ping, nil, wait); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("ping after Stop: %v, want no responders", err)
	}
}

func TestService_Disabled(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.worker(&echo{}, func(c *worker.Config) { c.NoService = true })
	ping, _ := micro.ControlSubject(micro.PingVerb, worker.ServiceName, "")
	if _, err := e.nc.Request(ping, nil, wait); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("ping: %v, want no responders", err)
	}
}
