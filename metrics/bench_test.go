package metrics_test

import (
	"testing"
	"time"

	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/metrics"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// The metrics one job costs on its way: a dispatch, a worker's report and
// a gateway request.
func BenchmarkObserversPerJob(b *testing.B) {
	m := metrics.New(metrics.Config{NoRuntime: true})
	d, w, g := m.Dispatcher(), m.Worker(), m.Gateway()
	rep := worker.JobReport{Tier: "tier1", Deployment: "gpu-a", Outcome: worker.OutcomeOK,
		Routing: &schema.Routing{CallMs: 420, TTFTMs: 40, CostUSD: 0.0003}, Usage: schema.Usage{PromptTokens: 12, CompletionTokens: 30}}
	req := gateway.RequestReport{Tier: "tier1", Stream: true, Status: 200, Duration: time.Second, TTFT: 50 * time.Millisecond, Routing: rep.Routing}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Dispatched("tier1", time.Millisecond)
			w.JobDone(rep)
			g.RequestStarted()
			g.RequestDone(req)
		}
	})
}
