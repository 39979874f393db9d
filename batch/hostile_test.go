package batch_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/llmq/llmq/batch"
	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/schema"
)

// hostileBeat is 14 bytes of msgpack whose "jobs" map holds an array
// claiming 2^32-1 elements: decoded without the allocation guard it is
// "fatal error: runtime: out of memory".
var hostileBeat = []byte{0x81, 0xa4, 'j', 'o', 'b', 's', 0x81, 0xa1, 'd', 0xdd, 0xff, 0xff, 0xff, 0xff}

// beat is a well-formed heartbeat of worker id serving tier.
func beat(t *testing.T, s broker.Subjects, id, tier string, capacity int, interval time.Duration) *nats.Msg {
	t.Helper()
	data, err := schema.MsgPack.Marshal(&schema.Heartbeat{
		Worker: id, Tier: tier, Deployment: "forged", Provider: "x", Model: "x", Subject: s.Worker(id),
		State: schema.StateReady, Seq: 1, IntervalMs: interval.Milliseconds(), Capacity: capacity,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: s.Heartbeat(id), Data: data}
}

func publishAll(t *testing.T, nc *nats.Conn, msgs ...*nats.Msg) {
	t.Helper()
	for _, m := range msgs {
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	// A generous bound: 20k messages through a loaded race-enabled
	// server can take longer than Flush's 10 s.
	if err := nc.FlushTimeout(wait); err != nil {
		t.Fatal(err)
	}
}

// awaitStats polls the runner's stats until ok says so.
func awaitStats(t *testing.T, r *batch.Runner, ok func(batch.Stats) bool) batch.Stats {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		s := r.Stats()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("runner stats never as wanted: workers %d, tiers %d, dropped beats %d, dropped messages %d",
				s.Workers, len(s.Windows), s.DroppedBeats, s.DroppedMessages)
		}
		time.Sleep(10 * time.Millisecond) // polling counters
	}
}

// A heartbeat claiming a 2^32-element array, or naming another worker's
// subject, is dropped and counted; the runner goes on answering.
func TestRunner_HostileHeartbeatsAreDroppedAndCounted(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	r, _ := f.runner("r1", nil)
	c := f.client(0)
	spoofed := beat(t, f.subjects, "w1", "tier1", 4, time.Second)
	spoofed.Subject = f.subjects.Heartbeat("w2")
	publishAll(t, connect(t, srv.ClientURL(), "attacker"),
		&nats.Msg{Subject: f.subjects.Heartbeat("evil"), Data: hostileBeat}, spoofed)
	awaitStats(t, r, func(s batch.Stats) bool { return s.DroppedBeats == 2 })
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		reps, err := c.Runners(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) == 1 {
			if reps[0].Workers != 0 || len(reps[0].Windows) != 0 {
				t.Fatalf("runner after the hostile beats: %+v", reps[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the runner does not answer after the hostile beats")
		}
	}
}

// A beat claiming capacity 2^30 made the runner pull 2^31 jobs at once:
// the client library allocates the pull's buffer up front, and the runner
// died. Capacity is clamped, and the window and each pull are bounded
// whatever the beats add up to.
func TestRunner_HugeCapacityIsBounded(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	r, _ := f.runner("r1", nil)
	c := f.client(0)
	submit(t, c, "big", jobs(5, "big"))
	attacker := connect(t, srv.ClientURL(), "attacker")
	publishAll(t, attacker, beat(t, f.subjects, "w0", "big", 1<<30, time.Minute))
	// The runner pulls (there is no dispatcher: the jobs are handed back).
	js, err := jetstream.New(connect(t, srv.ClientURL(), "inspector"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stream, err := js.Stream(ctx, broker.Token(f.subjects.Prefix)+"_batch_jobs")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for delivered := uint64(0); delivered == 0; {
		for ci := range stream.ListConsumers(ctx).Info() {
			delivered += ci.Delivered.Consumer
		}
		if time.Now().After(deadline) {
			t.Fatal("the runner never pulled a job")
		}
		time.Sleep(10 * time.Millisecond) // polling the server's count
	}
	if w := r.Stats().Windows["big"]; w <= 0 || w > 4096 {
		t.Fatalf("window %d for one worker claiming capacity 2^30", w)
	}
	// Many workers at the capacity cap add up to no more than MaxInFlight.
	for i := range 20 {
		publishAll(t, attacker, beat(t, f.subjects, fmt.Sprint("w", i+1), "big", broker.MaxCapacity, time.Minute))
	}
	s := awaitStats(t, r, func(s batch.Stats) bool { return s.Workers == 21 })
	if w := s.Windows["big"]; w != 4096 {
		t.Fatalf("window %d for 21 workers of capacity %d, want MaxInFlight 4096", w, broker.MaxCapacity)
	}
}

// 20k beats naming new tiers used to start 20k loops; tiers are capped,
// and a tier's loop ends when its workers are gone.
func TestRunner_ForgedTiersAreBoundedAndExpire(t *testing.T) {
	t.Parallel()
	const forged = 20_000
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	r, _ := f.runner("r1", nil)
	attacker := connect(t, srv.ClientURL(), "attacker")
	msgs := make([]*nats.Msg, forged)
	for i := range msgs {
		msgs[i] = beat(t, f.subjects, fmt.Sprint("ft", i), fmt.Sprint("forged", i), 4, time.Minute)
	}
	publishAll(t, attacker, msgs...)
	s := awaitStats(t, r, func(s batch.Stats) bool { return uint64(s.Workers)+s.DroppedBeats >= forged })
	if len(s.Windows) != batch.MaxTiers || s.DroppedBeats != forged-batch.MaxTiers {
		t.Fatalf("%d tiers run, %d beats dropped; want %d and %d", len(s.Windows), s.DroppedBeats, batch.MaxTiers, forged-batch.MaxTiers)
	}
	// The same workers beat "stopped": their tiers' loops end, and a new
	// tier is taken.
	for i := range batch.MaxTiers {
		hb := &schema.Heartbeat{Worker: fmt.Sprint("ft", i), Tier: fmt.Sprint("forged", i), Subject: f.subjects.Worker(fmt.Sprint("ft", i)),
			State: schema.StateStopped, Capacity: 4, IntervalMs: 60_000}
		data, _ := schema.MsgPack.Marshal(hb)
		msgs[i] = &nats.Msg{Subject: f.subjects.Heartbeat(hb.Worker), Data: data}
	}
	publishAll(t, attacker, msgs[:batch.MaxTiers]...)
	awaitStats(t, r, func(s batch.Stats) bool { return s.Workers == 0 && len(s.Windows) == 0 })
	publishAll(t, attacker, beat(t, f.subjects, "late", "late", 4, time.Minute))
	awaitStats(t, r, func(s batch.Stats) bool { _, ok := s.Windows["late"]; return ok })

	// Workers that stop beating expire three intervals after their last
	// beat (here the shortest a beat may claim, 10 ms), and so do their
	// tiers.
	deadline := time.Now().Add(wait)
	for {
		publishAll(t, attacker, beat(t, f.subjects, "brief", "brief", 4, 0))
		if _, ok := r.Stats().Windows["brief"]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tier brief never taken")
		}
		time.Sleep(5 * time.Millisecond) // beating
	}
	awaitStats(t, r, func(s batch.Stats) bool { _, ok := s.Windows["brief"]; return !ok && s.Workers == 1 })
}

// Workers are capped: a flood of new worker ids is dropped and counted.
func TestRunner_ForgedWorkersAreBounded(t *testing.T) {
	t.Parallel()
	const forged = batch.MaxWorkers + 500
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	r, _ := f.runner("r1", nil)
	msgs := make([]*nats.Msg, forged)
	for i := range msgs {
		msgs[i] = beat(t, f.subjects, fmt.Sprint("fw", i), "crowded", 2, time.Minute)
	}
	publishAll(t, connect(t, srv.ClientURL(), "attacker"), msgs...)
	s := awaitStats(t, r, func(s batch.Stats) bool { return uint64(s.Workers)+s.DroppedBeats >= forged })
	if s.Workers != batch.MaxWorkers || s.DroppedBeats != forged-batch.MaxWorkers {
		t.Fatalf("%d workers followed, %d beats dropped; want %d and %d", s.Workers, s.DroppedBeats, batch.MaxWorkers, forged-batch.MaxWorkers)
	}
}

// Job records whose headers are not what Submit writes are terminated, not
// run: a 5 KB custom_id made the result's subject too long for NATS, which
// closed the runner's connection on every attempt to store it; a tier
// header unlike the subject's ran the job elsewhere; an invalid batch id
// was handed back forever.
func TestRunner_ForgedJobRecordsAreTerminatedNotRun(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	f.dispatcher("d1")
	p := newCounter()
	f.worker("tier1", "a", 4, p)
	r, rnc := f.runner("r1", nil)
	c := f.client(0)
	submit(t, c, "b1", jobs(3, "tier1"))
	js, err := jetstream.New(connect(t, srv.ClientURL(), "attacker"))
	if err != nil {
		t.Fatal(err)
	}
	key := func(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }
	body := []byte(`{"messages":[{"role":"user","content":"p forged"}]}`)
	forged := []struct{ subjectID, batchID, customID, tier string }{
		{"x", "b1", strings.Repeat("x", 5000), "tier1"}, // custom_id too long, unlike the subject
		{"y", "b1", "y", "other"},                       // tier unlike the subject's
		{"z", "b 1", "z", "tier1"},                      // not a batch id
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, j := range forged {
		m := &nats.Msg{Subject: f.subjects.Prefix + ".batch.jobs.b1." + key(j.subjectID) + ".tier1", Data: body, Header: nats.Header{
			batch.HeaderBatchID: {j.batchID}, batch.HeaderCustomID: {j.customID}, batch.HeaderBatchTier: {j.tier},
		}}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	awaitStatus(t, c, "b1", wait, func(s *batch.Status) bool { return s.Done == 3 })
	awaitStats(t, r, func(s batch.Stats) bool { return s.DroppedMessages == uint64(len(forged)) })
	exactlyOnce(t, c, "b1", 3)
	if n := p.total.Load(); n != 3 {
		t.Fatalf("%d provider calls, want the 3 submitted jobs only", n)
	}
	if n := rnc.Stats().Reconnects; n != 0 {
		t.Fatalf("the runner's connection was closed %d times", n)
	}
}

// A status request is answered only on a subject a reply may be: not one of
// llmq's own, where the report would be taken for something else.
func TestRunner_StatusRequestWithAForeignReplyIsDropped(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	r, _ := f.runner("r1", nil)
	nc := connect(t, srv.ClientURL(), "attacker")
	hijack, err := nc.SubscribeSync(f.subjects.Jobs("tier1"))
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	runners := f.subjects.Prefix + ".batch.runners"
	if err := nc.PublishRequest(runners, f.subjects.Jobs("tier1"), nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest(runners, inbox.Subject, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := inbox.NextMsg(wait); err != nil {
		t.Fatalf("no report on a proper inbox: %v", err)
	}
	// The runner answers in order, and the server delivers its messages to
	// this connection in order: an answer on the job subject came first.
	if m, err := hijack.NextMsg(0); err == nil {
		t.Fatalf("the runner published its report as a job: %s", m.Data)
	}
	awaitStats(t, r, func(s batch.Stats) bool { return s.DroppedMessages == 1 })
}

// Runner reports come from any client that sees the request: Status keeps
// each within the batch's size.
func TestClient_StatusClampsForgedRunnerReports(t *testing.T) {
	t.Parallel()
	srv := brokertest.NewServer(t, brokertest.Options{JetStream: true})
	f := &fleet{t: t, urls: srv.ClientURL(), subjects: brokertest.Subjects(t)}
	c := f.client(0)
	submit(t, c, "b1", jobs(3, "tier1"))
	nc := connect(t, srv.ClientURL(), "liar")
	for range 2 {
		if _, err := nc.Subscribe(f.subjects.Prefix+".batch.runners", func(m *nats.Msg) {
			_ = m.Respond([]byte(fmt.Sprintf(`{"id":"liar","running":{"b1":%d}}`, math.MaxInt64)))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := c.Status(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Runners != 2 || s.Running < 0 || s.Running > s.Total || s.Pending < 0 || s.Running+s.Pending+s.Finished() != s.Total {
		t.Fatalf("status %+v", s)
	}
}
