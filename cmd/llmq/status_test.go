package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/schema"
)

// hostileBeat is 14 bytes of msgpack whose "jobs" map holds an array
// claiming 2^32-1 elements: decoded without the allocation guard it is
// "fatal error: runtime: out of memory".
var hostileBeat = []byte{0x81, 0xa4, 'j', 'o', 'b', 's', 0x81, 0xa1, 'd', 0xdd, 0xff, 0xff, 0xff, 0xff}

// testBeat is a well-formed heartbeat of worker id.
func testBeat(t *testing.T, s broker.Subjects, id string, seq uint64) *nats.Msg {
	t.Helper()
	data, err := schema.MsgPack.Marshal(&schema.Heartbeat{
		Worker: id, Tier: "tier1", Deployment: "d", Provider: "p", Model: "m", Subject: s.Worker(id),
		State: schema.StateReady, Seq: seq, IntervalMs: 60_000, Capacity: 2,
		Jobs: map[string][]uint64{"disp": {1, 2, 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: s.Heartbeat(id), Data: data}
}

// hostileBeats are a beat that would exhaust memory, a beat on another
// worker's subject, and one naming a job subject that is not its own.
func hostileBeats(t *testing.T, s broker.Subjects) []*nats.Msg {
	spoofed := testBeat(t, s, "spoofer", 1)
	spoofed.Subject = s.Heartbeat("spoofed")
	sink, _ := schema.MsgPack.Marshal(&schema.Heartbeat{Worker: "sink", Tier: "t", Subject: "evil.sink.1", State: schema.StateReady, Capacity: 1, IntervalMs: 100})
	return []*nats.Msg{{Subject: s.Heartbeat("evil"), Data: hostileBeat}, spoofed, {Subject: s.Heartbeat("sink"), Data: sink}}
}

func publishBeats(t *testing.T, nc *nats.Conn, msgs []*nats.Msg) {
	t.Helper()
	for _, m := range msgs {
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// awaitCount polls n() until it reaches want.
func awaitCount(t *testing.T, what string, n func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, n(), want)
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
}

func TestStatus_HostileAndExcessBeatsAreDroppedNotKept(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{})
	s := brokertest.Subjects(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := collect(ctx, srv.Connect("status"), s, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	attacker := srv.Connect("attacker")
	msgs := hostileBeats(t, s)
	for i := range maxFleetWorkers + 100 {
		msgs = append(msgs, testBeat(t, s, fmt.Sprint("w", i), 1))
	}
	publishBeats(t, attacker, msgs)
	awaitCount(t, "heartbeats handled", func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.workers) + int(f.dropped.Load())
	}, len(msgs))
	list := f.list()
	if len(list) != maxFleetWorkers || f.dropped.Load() != 103 {
		t.Fatalf("%d workers kept, %d beats dropped; want %d and 103", len(list), f.dropped.Load(), maxFleetWorkers)
	}
	for _, hb := range list {
		if hb.Jobs != nil || !strings.HasPrefix(hb.Worker, "w") {
			t.Fatalf("kept %+v", hb)
		}
	}
	var out strings.Builder
	f.printDropped(&out)
	if !strings.Contains(out.String(), "103 heartbeats refused") {
		t.Fatalf("dropped line %q", out.String())
	}
}

func TestTop_HostileAndExcessBeatsAreDroppedNotKept(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{})
	s := brokertest.Subjects(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc := srv.Connect("top")
	v, err := watchTop(ctx, nc, s)
	if err != nil {
		t.Fatal(err)
	}
	msgs := hostileBeats(t, s)
	for i := range maxFleetWorkers + 100 {
		msgs = append(msgs, testBeat(t, s, fmt.Sprint("w", i), 1))
	}
	// One worker beating far faster than the rate window needs.
	for seq := range uint64(1000) {
		msgs = append(msgs, testBeat(t, s, "w0", seq+2))
	}
	publishBeats(t, srv.Connect("attacker"), msgs)
	awaitCount(t, "heartbeats handled", func() int {
		v.mu.Lock()
		defer v.mu.Unlock()
		w := v.workers["w0"]
		if w == nil || w.hb.Seq != 1001 {
			return 0
		}
		return len(v.workers) + int(v.dropped.Load())
	}, maxFleetWorkers+103)
	snap := v.snapshot(ctx, nc, s, time.Millisecond)
	if len(snap.Workers) != maxFleetWorkers || snap.Dropped != 103 {
		t.Fatalf("%d workers shown, %d beats dropped; want %d and 103", len(snap.Workers), snap.Dropped, maxFleetWorkers)
	}
	v.mu.Lock()
	marks := len(v.workers["w0"].marks)
	v.mu.Unlock()
	if marks > maxMarks {
		t.Fatalf("%d rate marks kept for one worker, at most %d", marks, maxMarks)
	}
	if frame := render(snap); !strings.Contains(frame, "103 heartbeats refused") {
		t.Fatalf("frame does not say beats were refused:\n%.300s", frame)
	}
}
