package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
)

// benchBody is the chat completion of the gateway benchmarks.
var benchBody = []byte(`{"model":"tier1","messages":[{"role":"user","content":"Say hello to the benchmark in a few words."}],"max_tokens":16}`)

// benchGateway is a gateway on an embedded NATS server whose tier1 jobs a
// responder answers at once with a fixed reply (no dispatcher, no worker:
// what is measured is the gateway's own path, HTTP → NATS → reply).
func benchGateway(b *testing.B) *gateway.Gateway {
	srv := brokertest.NewServer(b, brokertest.Options{})
	subjects := brokertest.Subjects(b)
	reply, err := schema.MsgPack.Marshal(&schema.Response{ID: "chatcmpl-bench", Object: "chat.completion", Created: 1700000000, Model: "bench",
		Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: "Hello! How can I help you today?"}, FinishReason: "stop"}},
		Usage:   schema.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21}})
	if err != nil {
		b.Fatal(err)
	}
	rc := srv.Connect("responder")
	h := nats.Header{schema.HeaderContentType: {schema.ContentTypeMsgPack}}
	sub, err := rc.Subscribe(subjects.Jobs("tier1"), func(m *nats.Msg) {
		if _, err := schema.DecodeRequest(schema.MsgPack, m.Data); err != nil {
			b.Error(err)
		}
		_ = rc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: h, Data: reply})
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := rc.Flush(); err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Conn: srv.Connect("gateway"), Subjects: subjects, Listen: "127.0.0.1:0", Tiers: []string{"tier1"},
		NoService: true, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Stop(context.Background()) })
	return g
}

// benchUp is a gateway, a dispatcher and a worker with an instant provider
// on one connection to an embedded NATS server, handing jobs and replies
// over in process as llmq up does.
func benchUp(b *testing.B) *gateway.Gateway {
	srv := brokertest.NewServer(b, brokertest.Options{})
	subjects := brokertest.Subjects(b)
	nc := srv.Connect("llmq-up")
	inboxes := &broker.Inboxes{}
	d, err := dispatcher.New(dispatcher.Config{Conn: nc, Subjects: subjects, Tiers: []string{"tier1"}, Strategy: "least-busy", Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Stop(context.Background()) })
	answer := func(context.Context, *schema.Request) (*schema.Response, error) {
		return &schema.Response{Choices: []schema.Choice{{Message: schema.Message{Role: schema.RoleAssistant, Content: "Hello! How can I help you today?"}, FinishReason: "stop"}},
			Usage: schema.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21}}, nil
	}
	w, err := worker.New(worker.Config{Conn: nc, Subjects: subjects, Tier: "tier1", Deployment: "bench", Provider: provider.Func(answer),
		ProviderName: "bench", Model: "bench", Concurrency: 64, Logger: quiet(), Inboxes: inboxes})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Stop(context.Background()) })
	if err := d.AddLocal(w); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.WaitWorkers(ctx, "tier1", 1); err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Conn: nc, Subjects: subjects, Listen: "127.0.0.1:0", Tiers: []string{"tier1"},
		NoService: true, Logger: quiet(), Dispatcher: d, Inboxes: inboxes})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Stop(context.Background()) })
	return g
}

// BenchmarkGatewayRequest is one non-streamed chat completion through the
// gateway: "handler" calls its HTTP handler directly (decode, job on NATS,
// reply, encode), "up" does so in front of an in-process dispatcher and
// worker (benchUp), "loopback" sends it over a kept-alive loopback
// connection. Allocations are the whole process's: the gateway's, the
// embedded NATS server's and the responder's (and the HTTP client's in
// "loopback"). Both run 16 requests at once (8 per core), so that the
// CPU per request (cpu-ns/op, from getrusage) is the work, not the
// wake-ups of one request at a time.
func BenchmarkGatewayRequest(b *testing.B) {
	b.Run("handler", func(b *testing.B) {
		g := benchGateway(b)
		h := g.Handler()
		b.ReportAllocs()
		cpu := cpuTime()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(benchBody)))
				if w.Code != http.StatusOK {
					b.Errorf("status %d: %s", w.Code, w.Body)
					return
				}
			}
		})
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	})
	b.Run("up", func(b *testing.B) {
		// The handler in front of a dispatcher and a worker on its own
		// connection, as llmq up runs them: jobs and replies go in
		// process.
		h := benchUp(b).Handler()
		b.ReportAllocs()
		cpu := cpuTime()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(benchBody)))
				if w.Code != http.StatusOK {
					b.Errorf("status %d: %s", w.Code, w.Body)
					return
				}
			}
		})
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	})
	b.Run("loopback", func(b *testing.B) {
		g := benchGateway(b)
		url := "http://" + g.Addr() + "/v1/chat/completions"
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		defer c.CloseIdleConnections()
		b.ReportAllocs()
		cpu := cpuTime()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := c.Post(url, "application/json", bytes.NewReader(benchBody))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	})
}

// cpuTime is the CPU time this process has used: with the NATS server and
// the responders in the process, cpu-ns/op is what a job costs the
// machine, whatever the wait between messages.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
