package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

// Embeddings are routed like chat jobs: a tier of embedding deployments
// (model_info.mode embedding), here one simulated, answers Embed.
func ExampleClient_Embed() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	subjects := broker.Subjects{Prefix: "example"}
	d, err := dispatcher.New(dispatcher.Config{Conn: nc, Subjects: subjects, Tiers: []string{"embed"}, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer d.Stop(ctx)
	p, _ := sim.New(sim.Config{Name: "sim-embed"})
	w, err := worker.New(worker.Config{Conn: nc, Subjects: subjects, Tier: "embed", Provider: p, Model: "sim-embed", Embedding: true, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer w.Stop(ctx)
	if err := d.WaitWorkers(ctx, "embed", 1); err != nil {
		log.Fatal(err)
	}

	c := client.New(nc, client.Config{Subjects: subjects})
	dims := 4
	resp, err := c.Embed(ctx, "embed", &schema.Request{Input: schema.InputList{"llmq routes embeddings", "too"}, Dimensions: &dims})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range resp.Data {
		fmt.Println(e.Index, len(e.Embedding.Floats), "dimensions")
	}
	fmt.Println(resp.Usage.PromptTokens, "tokens on", resp.Routing.Tier)
	// Output:
	// 0 4 dimensions
	// 1 4 dimensions
	// 4 tokens on embed
}
