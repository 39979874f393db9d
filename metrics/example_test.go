package metrics_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/llmq/llmq/metrics"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// One Metrics per process: hand its observers to the components (here a
// worker's report is made up) and serve its handler.
func Example() {
	m := metrics.New(metrics.Config{NoRuntime: true})
	var wo worker.Observer = m.Worker() // worker.Config{Observer: wo, ...}
	wo.JobDone(worker.JobReport{Tier: "tier1", Deployment: "gpu-a", Outcome: worker.OutcomeOK,
		Routing: &schema.Routing{CallMs: 420, CostUSD: 0.0003}, Usage: schema.Usage{PromptTokens: 12, CompletionTokens: 30}})

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "llmq_worker_jobs_total") || strings.HasPrefix(line, "llmq_worker_output_tokens_total") {
			fmt.Print(line)
		}
	}
	// Output:
	// llmq_worker_jobs_total{deployment="gpu-a",outcome="ok",tier="tier1"} 1
	// llmq_worker_output_tokens_total{deployment="gpu-a",tier="tier1"} 30
}
