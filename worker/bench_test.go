package worker_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/openai"
	"github.com/llmq/llmq/worker/provider/sim"
)

// benchCompletion is the mock upstream's one answer.
var benchCompletion = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`)

// BenchmarkWorkerCall is one job sent straight to a worker's subject (as a
// dispatcher forwards it: msgpack, with a deadline) and answered: the
// worker's receive, decode, provider call, encode and reply. "sim" is an
// instant simulated provider; "openai" the OpenAI adapter against a local
// mock that answers at once with a fixed completion, so the adapter's HTTP
// call and JSON are in; "openai/slots=1024" the same with a concurrency of
// 1,024 instead of 64 (when every runner took its turn, each job landed on
// one whose stack the garbage collector had shrunk while it waited; see
// runner.go). Allocations are the whole process's (NATS server,
// producer and mock included). 16 jobs run at once (8 per core), so that
// the CPU per job (cpu-ns/op, from getrusage) is the work, not the
// wake-ups of one job at a time.
func BenchmarkWorkerCall(b *testing.B) {
	mock := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(benchCompletion)
	}))
	defer mock.Close()
	s, err := sim.New(sim.Config{Name: "instant", Parallel: 1024, Tokens: 16})
	if err != nil {
		b.Fatal(err)
	}
	hc := provider.NewHTTPClient()
	defer hc.CloseIdleConnections()
	o, err := openai.New(provider.Options{Model: "bench", APIBase: mock.URL + "/v1", HTTP: hc})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		p     provider.Provider
		slots int
	}{{"sim", s, 64}, {"openai", o, 64}, {"openai/slots=1024", o, 1024}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := brokertest.NewServer(b, brokertest.Options{})
			subjects := brokertest.Subjects(b)
			w, err := worker.New(worker.Config{Conn: srv.Connect("worker"), Subjects: subjects, Tier: tier, Deployment: deployment,
				Provider: tc.p, ProviderName: provName, Model: modelName, Concurrency: tc.slots, HeartbeatInterval: time.Second, Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				_ = w.Stop(ctx)
			}()
			nc := srv.Connect("producer")
			n := 16
			data, err := schema.MsgPack.Marshal(&schema.Request{Messages: []schema.Message{{Role: schema.RoleUser,
				Content: "Say hello to the benchmark in a few words."}}, MaxTokens: &n})
			if err != nil {
				b.Fatal(err)
			}
			deadline := []string{strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}
			b.ReportAllocs()
			cpu := cpuTime()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m := &nats.Msg{Subject: w.Subject(), Data: data, Header: nats.Header{
						schema.HeaderContentType: {schema.ContentTypeMsgPack}, schema.HeaderDeadline: deadline}}
					r, err := nc.RequestMsg(m, wait)
					if err != nil {
						b.Error(err)
						return
					}
					if broker.IsError(r) {
						b.Errorf("job failed: %s", r.Data)
						return
					}
				}
			})
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
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
