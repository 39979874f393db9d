package worker

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

func newTestWorker(t *testing.T) (*Worker, broker.Subjects) {
	t.Helper()
	srv := brokertest.NewServer(t, brokertest.Options{})
	subjects := brokertest.Subjects(t)
	w, err := New(Config{Conn: srv.Connect("worker"), Subjects: subjects, Tier: "t", Concurrency: broker.MaxCapacity, Backlog: broker.MaxCapacity,
		Provider: provider.Func(func(context.Context, *schema.Request) (*schema.Response, error) { return nil, nil })})
	if err != nil {
		t.Fatal(err)
	}
	return w, subjects
}

// The largest beat hostile jobs can make — every dispatcher slot taken by
// an id of the longest length, every job slot held with a seq of the
// longest encoding — is one broker.DecodeHeartbeat accepts.
func TestSenders_WorstCaseBeat_StaysWithinBrokerBounds(t *testing.T) {
	t.Parallel()
	w, subjects := newTestWorker(t)
	now := time.Now()
	w.mu.Lock()
	jobs := 0
	for i := 0; jobs < w.cfg.Concurrency+w.cfg.Backlog; i++ {
		id := fmt.Sprintf("%0*d", broker.MaxWorkerIDLen, i%(2*broker.MaxBeatDispatchers))
		if _, tracked := w.receive(id, math.MaxUint64-uint64(i), true, now); tracked {
			jobs++
		}
		if i > 1_000_000 {
			t.Fatal("the table refuses every job")
		}
	}
	w.mu.Unlock()
	hb := w.Heartbeat()
	data, err := schema.MsgPack.Marshal(&hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := subjects.DecodeHeartbeat(subjects.Heartbeat(w.ID()), data, now); err != nil {
		t.Fatalf("worst-case beat of %d bytes refused: %v", len(data), err)
	}
	if len(hb.Received) > broker.MaxBeatDispatchers {
		t.Fatalf("%d dispatchers in a beat", len(hb.Received))
	}
}

// A full table makes room for a new dispatcher by forgetting the one idle
// longest; one that holds jobs is never forgotten.
func TestSenders_FullTable_EvictsTheLongestIdleNeverOneHoldingJobs(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorker(t)
	start := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.receive("busy", 1, true, start) // oldest of all, but holds a job
	for i := 1; i < broker.MaxBeatDispatchers; i++ {
		w.receive(fmt.Sprintf("idle-%d", i), 1, false, start.Add(time.Duration(i)*time.Millisecond))
	}
	w.receive("new", 1, false, start.Add(time.Hour))
	if len(w.senders) != broker.MaxBeatDispatchers {
		t.Fatalf("%d senders, want %d", len(w.senders), broker.MaxBeatDispatchers)
	}
	if w.senders["busy"] == nil || w.senders["new"] == nil || w.senders["idle-1"] != nil {
		t.Fatalf("busy kept %v, new added %v, idle-1 (the longest idle) gone %v",
			w.senders["busy"] != nil, w.senders["new"] != nil, w.senders["idle-1"] == nil)
	}
	// Idle for senderTTL: forgotten at the next beat, unless holding jobs.
	received, _ := w.senderState(start.Add(time.Hour + senderTTL + time.Second))
	if _, ok := received["busy"]; !ok || len(received) != 1 {
		t.Fatalf("after the TTL the beat names %d dispatchers (busy: %v), want only busy", len(received), ok)
	}
}
