package batch_test

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/llmq/llmq/batch"
	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

// A pipeline submits jobs, waits for them and reads one result per job.
// Here NATS, a dispatcher, a simulated worker and a batch runner run in
// the process; in production they are `llmq up` or separate processes.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "llmq-example-")
	defer os.RemoveAll(dir)
	srv, _ := broker.StartEmbedded(broker.EmbeddedConfig{JetStream: true, StoreDir: dir})
	defer srv.Shutdown()
	nc, _ := broker.Connect(ctx, broker.ConnectConfig{URLs: []string{srv.ClientURL()}, Logger: quiet()})
	defer nc.Close()

	d, _ := dispatcher.New(dispatcher.Config{Conn: nc, Tiers: []string{"tier1"}, Logger: quiet()})
	_ = d.Start(ctx)
	defer d.Stop(ctx)
	p, _ := sim.New(sim.Config{})
	w, _ := worker.New(worker.Config{Conn: nc, Tier: "tier1", Provider: p, ProviderName: "sim", Logger: quiet()})
	_ = w.Start(ctx)
	defer w.Stop(ctx)
	r, _ := batch.NewRunner(batch.RunnerConfig{Conn: nc, Logger: quiet()})
	_ = r.Start(ctx)
	defer r.Stop(ctx)

	// The pipeline itself.
	c, err := batch.Open(ctx, batch.Config{Conn: nc})
	if err != nil {
		fmt.Println(err)
		return
	}
	jobs := func(yield func(batch.Job) bool) {
		for _, word := range []string{"alpha", "beta", "gamma"} {
			req := &schema.Request{Messages: []schema.Message{{Role: "user", Content: schema.Content(word)}}}
			if !yield(batch.Job{CustomID: "id-" + word, Tier: "tier1", Request: req}) {
				return
			}
		}
	}
	rep, err := c.Submit(ctx, "example", jobs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("submitted", rep.Submitted)
	var ids []string
	for res, err := range c.Results(ctx, "example", batch.ResultsOptions{Follow: true}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		if _, err := res.Completion(); err == nil {
			ids = append(ids, res.CustomID)
		}
	}
	slices.Sort(ids)
	fmt.Println(ids)
	s, _ := c.Status(ctx, "example")
	fmt.Println(s.State, s.Done, "done", s.Failed, "failed")
	// Output:
	// submitted 3
	// [id-alpha id-beta id-gamma]
	// completed 3 done 0 failed
}
