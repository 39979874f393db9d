package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
)

// LatencyResults are the added-latency section's: per offered rate, the
// same request sent straight to the fake OpenAI server, through llmq, and
// as a raw NATS echo.
type LatencyResults struct {
	// Topology says which processes ran.
	Topology string `json:"topology"`
	// Rounds is how many slices each path's time at a rate was cut into;
	// the paths take turns slice by slice, so that other work on the
	// machine falls on all of them alike.
	Rounds int          `json:"rounds"`
	Runs   []LatencyRun `json:"runs"`
}

// LatencyRun is one offered rate.
type LatencyRun struct {
	Rate int `json:"rate"`
	// Echo is the raw NATS request-reply round trip; Direct the call from
	// the producer straight to the fake server (llmq's own OpenAI adapter,
	// no NATS); LLMQ the same call as a job through llmq.
	Echo   LoadResult `json:"echo"`
	Direct LoadResult `json:"direct"`
	LLMQ   LoadResult `json:"llmq"`
	// Added is LLMQ minus Direct at each percentile.
	Added Added `json:"added"`
	// EchoCPU, DirectCPU and LLMQCPU are the CPU each process spent per
	// call on each path.
	EchoCPU   CPUUse `json:"echo_cpu"`
	DirectCPU CPUUse `json:"direct_cpu"`
	LLMQCPU   CPUUse `json:"llmq_cpu"`
}

// Added is a latency difference at three percentiles, in microseconds.
type Added struct {
	P50Us  float64 `json:"p50_us"`
	P99Us  float64 `json:"p99_us"`
	P999Us float64 `json:"p999_us"`
}

// benchRequest is the request the latency and throughput sections send.
func benchRequest() *schema.Request {
	n := 16
	return &schema.Request{
		Messages:  []schema.Message{{Role: schema.RoleUser, Content: "Say hello to the benchmark in a few words."}},
		MaxTokens: &n,
	}
}

const latencyConfig = `model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: %s
      max_parallel_requests: 1024
    model_info: {id: bench-openai}
router_settings:
  routing_strategy: least-busy
  num_retries: 0
`

func (r *runner) latency(ctx context.Context) (*LatencyResults, error) {
	c, err := r.newCluster()
	if err != nil {
		return nil, err
	}
	defer c.close()
	_, fake, err := c.helper(helperSpec{Kind: "openai"})
	if err != nil {
		return nil, err
	}
	if _, _, err := c.helper(helperSpec{Kind: "echo", Subject: "bench.echo"}); err != nil {
		return nil, err
	}
	cfg, err := c.file("latency.yaml", fmt.Sprintf(latencyConfig, fake.URL))
	if err != nil {
		return nil, err
	}
	if _, err := c.llmq("llmq dispatcher", "dispatcher", "-c", cfg); err != nil {
		return nil, err
	}
	if _, err := c.llmq("llmq worker", "worker", "-c", cfg, "--deployment", "bench-openai"); err != nil {
		return nil, err
	}
	nc, err := c.connect("llmq-bench-producer")
	if err != nil {
		return nil, err
	}
	cl := client.New(nc, client.Config{Timeout: r.o.Timeout, NoResponderRetries: -1})
	req := benchRequest()
	if err := c.waitReady(ctx, cl, "bench", req); err != nil {
		return nil, err
	}
	hc := provider.NewHTTPClient()
	defer hc.CloseIdleConnections()
	direct, err := openai.New(provider.Options{Model: "bench", APIBase: fake.URL, HTTP: hc})
	if err != nil {
		return nil, err
	}
	payload, err := schema.MsgPack.Marshal(req)
	if err != nil {
		return nil, err
	}
	paths := []struct {
		name string
		call Call
	}{
		{"echo", func(ctx context.Context, _ int) error {
			_, err := nc.RequestWithContext(ctx, "bench.echo", payload)
			return err
		}},
		{"direct", func(ctx context.Context, _ int) error {
			_, err := direct.Complete(ctx, req)
			return err
		}},
		{"llmq", func(ctx context.Context, _ int) error {
			_, err := cl.Complete(ctx, "bench", req)
			return err
		}},
	}
	warm := r.o.RateDuration / 8
	for _, p := range paths {
		ClosedLoop(ctx, 8, warm, r.o.Timeout, p.call)
	}
	res := &LatencyResults{Rounds: r.o.Rounds, Topology: "separate processes on loopback TCP: NATS server (embedded, own process), llmq dispatcher, llmq worker (openai adapter), fake OpenAI server, echo responder, and the load generator"}
	slice := r.o.RateDuration / time.Duration(r.o.Rounds)
	for _, rate := range r.o.Rates {
		run := LatencyRun{Rate: rate}
		rounds := make([][]LoadResult, len(paths))
		cpu := make([]CPUUse, len(paths))
		for range r.o.Rounds {
			for k, p := range paths {
				if ctx.Err() != nil {
					return res, errStopped
				}
				m := meter(c.pids())
				lr := OpenLoop(ctx, Fixed(float64(rate), slice), r.o.Timeout, p.call)
				cpu[k] = addCPU(cpu[k], m.stop(lr.OK), r.o.Rounds)
				rounds[k] = append(rounds[k], lr)
				if err := c.check(); err != nil {
					return res, err
				}
			}
		}
		for k, p := range paths {
			lr := Merge(rounds[k]...)
			r.log.Info("latency", "rate", rate, "path", p.name, "ok", lr.OK, "failed", lr.Failed,
				"p50_us", int(lr.Latency.P50Us), "p99_us", int(lr.Latency.P99Us), "lag_p99_us", int(lr.Lag.P99Us), "other_cpu_percent", int(cpu[k].OtherPercent))
			switch p.name {
			case "echo":
				run.Echo, run.EchoCPU = lr, cpu[k]
			case "direct":
				run.Direct, run.DirectCPU = lr, cpu[k]
			case "llmq":
				run.LLMQ, run.LLMQCPU = lr, cpu[k]
			}
		}
		run.Added = Added{
			P50Us:  run.LLMQ.Latency.P50Us - run.Direct.Latency.P50Us,
			P99Us:  run.LLMQ.Latency.P99Us - run.Direct.Latency.P99Us,
			P999Us: run.LLMQ.Latency.P999Us - run.Direct.Latency.P999Us,
		}
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}

// addCPU adds one round's use to a path's average over rounds.
func addCPU(sum, u CPUUse, rounds int) CPUUse {
	if sum.PerCallUs == nil {
		sum.PerCallUs = map[string]float64{}
	}
	for k, v := range u.PerCallUs {
		sum.PerCallUs[k] += v / float64(rounds)
	}
	sum.BusyPercent += u.BusyPercent / float64(rounds)
	sum.OtherPercent += u.OtherPercent / float64(rounds)
	return sum
}
