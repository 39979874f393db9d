package worker_test

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
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// A whole llmq on one machine: a NATS server, a dispatcher, a simulated
// deployment's worker built from a LiteLLM-style config, and a producer.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{NoListen: false, Listen: "127.0.0.1:-1"})
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

	d, err := dispatcher.New(dispatcher.Config{Conn: nc, Subjects: subjects, Tiers: []string{"tier1"}, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer d.Stop(ctx)

	cfg, err := config.Parse([]byte(`
model_list:
  - model_name: tier1
    litellm_params:
      model: sim/demo
      sim:
        tokens: 6
`), func(string) (string, bool) { return "", false })
	if err != nil {
		log.Fatal(err)
	}
	wc, err := worker.FromDeployment(&cfg.ModelList[0], &cfg.RouterSettings)
	if err != nil {
		log.Fatal(err)
	}
	wc.Conn, wc.Subjects, wc.Logger = nc, subjects, logger
	w, err := worker.New(wc)
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer w.Stop(ctx)
	if err := d.WaitWorkers(ctx, "tier1", 1); err != nil {
		log.Fatal(err)
	}

	c := client.New(nc, client.Config{Subjects: subjects})
	resp, err := c.Complete(ctx, "tier1", &schema.Request{Messages: []schema.Message{
		{Role: schema.RoleUser, Content: "hello from llmq"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Text())
	fmt.Println(resp.Routing.Provider, resp.Routing.Model, resp.Usage.CompletionTokens, "tokens")
	// Output:
	// hello from llmq hello from llmq
	// sim demo 6 tokens
}
