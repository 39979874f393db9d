package worker

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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
// longest encoding, every queue age the largest — is one
// broker.DecodeHeartbeat accepts.
func TestSenders_WorstCaseBeat_StaysWithinBrokerBounds(t *testing.T) {
	t.Parallel()
	w, subjects := newTestWorker(t)
	now := time.Now()
	w.mu.Lock()
	jobs := 0
	for i := 0; jobs < w.cfg.Concurrency+w.cfg.Backlog; i++ {
		id := fmt.Sprintf("%0*d", broker.MaxWorkerIDLen, i%(2*broker.MaxBeatDispatchers))
		if _, tracked := w.receive(id, math.MaxUint64-uint64(i), broker.MaxQueueAge, true, now); tracked {
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
	if len(hb.Received) > broker.MaxBeatDispatchers || len(hb.QueueAgeUs) != len(hb.Jobs) {
		t.Fatalf("%d dispatchers in a beat, %d queue ages for %d holding jobs", len(hb.Received), len(hb.QueueAgeUs), len(hb.Jobs))
	}
	t.Logf("worst-case beat: %d bytes", len(data))
}

// A job's Llmq-Queue-Wait-Us is untrusted: a wait that is not a number is
// ignored, a huge one clamped to what a beat may carry.
func TestJobKey_QueueWait_ClampedAndChecked(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{{"", 0}, {"7000", 7 * time.Millisecond}, {"-3", 0}, {"x", 0}, {"99999999999999999999999", 0}, {"18446744073709551615", broker.MaxQueueAge}} {
		m := &nats.Msg{Header: nats.Header{schema.HeaderDispatcher: {"d-1"}, schema.HeaderJobSeq: {"4"}, schema.HeaderQueueWaitUs: {tt.in}}}
		d, seq, wait := jobKey(m)
		if d != "d-1" || seq != 4 || wait != tt.want {
			t.Fatalf("Llmq-Queue-Wait-Us %q: jobKey = %q, %d, %v; want d-1, 4, %v", tt.in, d, seq, wait, tt.want)
		}
	}
}

// A dispatcher's queue age is the wait its last job here reported plus
// the time since, or the time since that job when it left none waiting;
// it is in the beat while the dispatcher holds jobs on the worker or sent
// one within the beat interval, not once it has long sent nothing here.
func TestSenders_QueueAge_ReportedWhileRecentOrHolding(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorker(t)
	start := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.receive("holding", 1, 300*time.Millisecond, true, start)
	w.receive("recent", 1, 0, false, start)
	ms := func(ages map[string]int64, d string) int64 { return ages[d] / 1000 }
	_, _, ages := w.senderState(start.Add(500*time.Millisecond), time.Second)
	if len(ages) != 2 || ms(ages, "holding") != 800 || ms(ages, "recent") != 500 {
		t.Fatalf("queue ages %v, want holding 800 ms and recent 500 ms", ages)
	}
	_, _, ages = w.senderState(start.Add(2*time.Second), time.Second)
	if len(ages) != 1 || ms(ages, "holding") != 2300 {
		t.Fatalf("queue ages %v after the interval, want holding's 2300 ms only", ages)
	}
	w.receive("holding", 2, 0, true, start.Add(3*time.Second)) // it left no job waiting
	if _, _, ages = w.senderState(start.Add(3*time.Second+10*time.Millisecond), time.Second); ms(ages, "holding") != 10 {
		t.Fatalf("queue ages %v, want holding's 10 ms: the time since its last job, which left none waiting", ages)
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
	w.receive("busy", 1, 0, true, start) // oldest of all, but holds a job
	for i := 1; i < broker.MaxBeatDispatchers; i++ {
		w.receive(fmt.Sprintf("idle-%d", i), 1, 0, false, start.Add(time.Duration(i)*time.Millisecond))
	}
	w.receive("new", 1, 0, false, start.Add(time.Hour))
	if len(w.senders) != broker.MaxBeatDispatchers {
		t.Fatalf("%d senders, want %d", len(w.senders), broker.MaxBeatDispatchers)
	}
	if w.senders["busy"] == nil || w.senders["new"] == nil || w.senders["idle-1"] != nil {
		t.Fatalf("busy kept %v, new added %v, idle-1 (the longest idle) gone %v",
			w.senders["busy"] != nil, w.senders["new"] != nil, w.senders["idle-1"] == nil)
	}
	// Idle for senderTTL: forgotten at the next beat, unless holding jobs.
	received, _, _ := w.senderState(start.Add(time.Hour+senderTTL+time.Second), time.Second)
	if _, ok := received["busy"]; !ok || len(received) != 1 {
		t.Fatalf("after the TTL the beat names %d dispatchers (busy: %v), want only busy", len(received), ok)
	}
}
