package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

// An OpenAI-compatible endpoint in front of a one-worker fleet: the
// request's "model" is the tier.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{NoListen: true})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect("", srv.InProcess())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	d, _ := dispatcher.New(dispatcher.Config{Conn: nc, Tiers: []string{"tier1"}, Logger: logger})
	if err := d.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer d.Stop(ctx)
	p, _ := sim.New(sim.Config{Name: "demo"})
	w, _ := worker.New(worker.Config{Conn: nc, Tier: "tier1", Provider: p, ProviderName: "sim", Logger: logger})
	if err := w.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer w.Stop(ctx)
	if err := d.WaitWorkers(ctx, "tier1", 1); err != nil {
		log.Fatal(err)
	}

	g, _ := gateway.New(gateway.Config{Conn: nc, Listen: "127.0.0.1:0", Keys: []string{"sk-local"}, Logger: logger})
	if err := g.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer g.Stop(ctx)

	body := `{"model":"tier1","max_tokens":2,"messages":[{"role":"user","content":"hello queues"}]}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.Addr()+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sk-local")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	fmt.Println(strings.Contains(string(out), `"content":"hello queues"`))
	// Output:
	// 200 OK
	// true
}
