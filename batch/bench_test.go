package batch_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/batch"
	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

// BenchmarkBatch submits one batch (100k jobs; LLMQ_BENCH_JOBS to change)
// to a fleet on one JetStream server over TCP loopback — a dispatcher, 4
// instant sim workers of 8 slots, one runner — and reports the submit rate
// and the completion rate. Run it alone (it is not a test):
//
//	go test -run '^$' -bench BenchmarkBatch -benchtime 1x ./batch
func BenchmarkBatch(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("LLMQ_BENCH_JOBS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{JetStream: true, StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	nc := func(name string) *nats.Conn {
		c, err := broker.Connect(ctx, broker.ConnectConfig{URLs: []string{srv.ClientURL()}, Name: name, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		return c
	}
	d, _ := dispatcher.New(dispatcher.Config{Conn: nc("dispatcher"), Tiers: []string{"tier1"}, Strategy: "least-busy", Logger: quiet()})
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer d.Stop(ctx)
	for i := range 4 {
		p, _ := sim.New(sim.Config{Parallel: 8})
		w, _ := worker.New(worker.Config{Conn: nc(fmt.Sprint("worker", i)), Tier: "tier1", Deployment: fmt.Sprint("sim", i),
			Provider: p, ProviderName: "sim", Concurrency: 8, Logger: quiet()})
		if err := w.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer w.Stop(ctx)
	}
	r, _ := batch.NewRunner(batch.RunnerConfig{Conn: nc("runner"), Logger: quiet()})
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer r.Stop(ctx)
	c, err := batch.Open(ctx, batch.Config{Conn: nc("producer")})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-%d", i)
		start := time.Now()
		rep, err := c.Submit(ctx, id, jobs(n, "tier1"))
		if err != nil || rep.Submitted != n {
			b.Fatalf("submit: %+v %v", rep, err)
		}
		submitted := time.Since(start)
		var s *batch.Status
		for {
			if s, err = c.Status(ctx, id); err != nil {
				b.Fatal(err)
			}
			if s.State == batch.StateCompleted {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		total := time.Since(start)
		if s.Done != n {
			b.Fatalf("status %+v", s)
		}
		b.ReportMetric(float64(n)/submitted.Seconds(), "submit-jobs/s")
		b.ReportMetric(float64(n)/total.Seconds(), "complete-jobs/s")
		b.Logf("%d jobs: submitted in %s, all results stored after %s", n, submitted.Round(time.Millisecond), total.Round(time.Millisecond))
	}
}
