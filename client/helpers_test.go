package client_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

// wait bounds anything a test waits for that should happen.
const wait = 10 * time.Second

// env is a NATS server with a producer and a worker connection.
type env struct {
	t        *testing.T
	subjects broker.Subjects
	producer *nats.Conn
	worker   *nats.Conn
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := brokertest.NewServer(t, brokertest.Options{})
	return &env{t: t, subjects: brokertest.Subjects(t), producer: srv.Connect("producer"), worker: srv.Connect("worker")}
}

func (e *env) client(cfg client.Config) *client.Client {
	cfg.Subjects = e.subjects
	return client.New(e.producer, cfg)
}

// job is what the fake worker saw.
type job struct {
	msg *nats.Msg
	req *schema.Request
	err error
}

// respond subscribes the fake worker (acting as dispatcher too) to the
// tier's jobs: every job is decoded and handed to handle, then reported on
// the returned channel.
func (e *env) respond(tier string, handle func(m *nats.Msg, req *schema.Request)) <-chan job {
	e.t.Helper()
	jobs := make(chan job, 64)
	sub, err := e.worker.Subscribe(e.subjects.Jobs(tier), func(m *nats.Msg) {
		req, err := schema.DecodeRequest(broker.CodecOf(m), m.Data)
		if err == nil && handle != nil {
			handle(m, req)
		}
		jobs <- job{m, req, err}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.worker.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return jobs
}

func (e *env) nextJob(jobs <-chan job) job {
	e.t.Helper()
	select {
	case j := <-jobs:
		if j.err != nil {
			e.t.Fatalf("worker could not decode the job: %v", j.err)
		}
		return j
	case <-time.After(wait):
		e.t.Fatal("no job arrived")
		return job{}
	}
}

// count subscribes to subject and counts the messages that arrive.
func (e *env) count(subject string) func() int {
	e.t.Helper()
	sub, err := e.worker.SubscribeSync(subject)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.worker.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return func() int {
		_ = e.producer.Flush()
		_ = e.worker.Flush()
		n, _, _ := sub.Pending()
		return n
	}
}

// chunk publishes a stream message the way a worker does: to the
// producer's inbox, with the control subject as reply.
func (e *env) chunk(to, control string, codec schema.Codec, seq int, c *schema.Chunk, end bool) {
	e.t.Helper()
	data, err := codec.Marshal(c)
	if err != nil {
		e.t.Fatal(err)
	}
	m := &nats.Msg{Subject: to, Reply: control, Data: data, Header: nats.Header{
		schema.HeaderContentType: {codec.ContentType()},
		client.HeaderSeq:         {strconv.Itoa(seq)},
	}}
	if end {
		m.Header[schema.HeaderStream] = []string{schema.StreamEnd}
	}
	if err := e.worker.PublishMsg(m); err != nil {
		e.t.Fatal(err)
	}
}

// streamError publishes the error that ends a stream, as a worker does.
func (e *env) streamError(to string, codec schema.Codec, seq int, se *schema.Error) {
	e.t.Helper()
	m := broker.ErrorMsg(to, codec, se)
	m.Header[schema.HeaderStream] = []string{schema.StreamEnd}
	m.Header[client.HeaderSeq] = []string{strconv.Itoa(seq)}
	if err := e.worker.PublishMsg(m); err != nil {
		e.t.Fatal(err)
	}
}

func delta(text string) *schema.Chunk {
	return &schema.Chunk{ID: "c1", Object: schema.ObjectChunk, Model: "m",
		Choices: []schema.ChunkChoice{{Delta: schema.Delta{Content: text}}}}
}

func final() *schema.Chunk {
	f := schema.FinishStop
	return &schema.Chunk{ID: "c1", Object: schema.ObjectChunk, Model: "m",
		Choices: []schema.ChunkChoice{{FinishReason: &f}},
		Usage:   &schema.Usage{PromptTokens: 1, CompletionTokens: 3, TotalTokens: 4},
		Routing: &schema.Routing{Tier: "t", Attempts: 1}}
}

func hello() *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "hello"}}}
}

func wantCode(t *testing.T, err error, code string) *schema.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", code)
	}
	e, ok := err.(*schema.Error)
	if !ok {
		t.Fatalf("err = %v (%T), want a *schema.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	return e
}
