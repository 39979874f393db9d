package worker_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

func TestWorker_Heartbeat_FirstBeatDescribesReadyWorker(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	w := e.worker(&echo{}, func(c *worker.Config) {
		c.Concurrency = 3
		c.Weight = 2.5
		c.Order = 1
		c.Host = "http://gpu1:11434"
	})
	hb := nextBeat(t, beats)
	want := schema.Heartbeat{
		Worker: w.ID(), Tier: tier, Deployment: deployment, Provider: provName, Model: modelName,
		Host: "http://gpu1:11434", Subject: w.Subject(), State: schema.StateReady, Seq: 1,
		// The setup's hour is clamped to what receivers accept.
		IntervalMs: broker.MaxBeatInterval.Milliseconds(), Capacity: 3, InFlight: 0, Weight: 2.5, Order: 1,
	}
	if !equalBeats(hb, want) {
		t.Fatalf("first beat\n got %+v\nwant %+v", hb, want)
	}
}

// equalBeats compares the fields a worker fills at start.
func equalBeats(a, b schema.Heartbeat) bool {
	type view struct {
		Worker, Tier, Deployment, Provider, Model, Host, Subject, State string
		Seq                                                             uint64
		IntervalMs                                                      int64
		Capacity, InFlight, Order, Samples                              int
		Weight, LatencyMs, MsPerToken                                   float64
		Completed, Failed                                               uint64
	}
	v := func(h schema.Heartbeat) view {
		return view{h.Worker, h.Tier, h.Deployment, h.Provider, h.Model, h.Host, h.Subject, h.State, h.Seq, h.IntervalMs,
			h.Capacity, h.InFlight, h.Order, h.Samples, h.Weight, h.LatencyMs, h.MsPerToken, h.Completed, h.Failed}
	}
	return v(a) == v(b) && maps.Equal(a.Received, b.Received)
}

func TestWorker_Heartbeat_CountsJobsPerDispatcherAndLatencySamples(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	p, err := sim.New(sim.Config{Tokens: 4, TTFT: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := e.worker(p)
	for _, d := range []string{"d-one", "d-two", "d-one", ""} {
		var hdr []string
		if d != "" {
			hdr = []string{schema.HeaderDispatcher, d}
		}
		decodeResponse(t, e.request(job(t, w, ask("x"), hdr...)))
	}
	wantReceived := map[string]uint64{"d-one": 2, "d-two": 1}
	hb := awaitBeat(t, beats, "four jobs completed", func(hb schema.Heartbeat) bool { return hb.Completed == 4 && hb.InFlight == 0 })
	if !maps.Equal(hb.Received, wantReceived) {
		t.Errorf("received %v, want %v", hb.Received, wantReceived)
	}
	if hb.Samples != 4 || hb.LatencyMs < 1 || hb.MsPerToken <= 0 || hb.MsPerToken > hb.LatencyMs {
		t.Errorf("samples %d latency %vms per token %vms; want 4 samples of at least the 1ms TTFT", hb.Samples, hb.LatencyMs, hb.MsPerToken)
	}
	if hb.Failed != 0 || hb.State != schema.StateReady {
		t.Errorf("beat %+v", hb)
	}
}

func TestWorker_Heartbeat_ReportsInFlightAndBeatsWhenASlotFrees(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	g := e.gate()
	// Beats an hour apart: only a freed slot can cause the beat awaited
	// after the release.
	w := e.worker(g, func(c *worker.Config) { c.Concurrency = 2 })
	nextBeat(t, beats)
	a := e.requestAsync(job(t, w, ask("a")))
	b := e.requestAsync(job(t, w, ask("b")))
	g.awaitStarted(t, 2)
	if n := w.Heartbeat().InFlight; n != 2 {
		t.Fatalf("in flight %d, want 2", n)
	}
	g.open()
	awaitReply(t, a)
	awaitReply(t, b)
	awaitBeat(t, beats, "both jobs done and none in flight", func(hb schema.Heartbeat) bool { return hb.Completed == 2 && hb.InFlight == 0 })
}

func TestWorker_Announce_TriggersPromptBeat(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	w := e.worker(&echo{})
	if hb := nextBeat(t, beats); hb.Seq != 1 {
		t.Fatalf("first beat seq %d", hb.Seq)
	}
	if err := e.nc.Publish(e.subjects.Announce(), nil); err != nil {
		t.Fatal(err)
	}
	// The interval is an hour: a beat now is the announce's.
	hb := nextBeat(t, beats)
	if hb.Seq != 2 || hb.Worker != w.ID() || hb.State != schema.StateReady {
		t.Fatalf("beat after announce %+v", hb)
	}
}

func TestWorker_Heartbeat_BeatsEveryInterval(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	e.worker(&echo{}, func(c *worker.Config) { c.HeartbeatInterval = 20 * time.Millisecond })
	var last uint64
	for range 4 {
		hb := nextBeat(t, beats)
		if hb.Seq <= last || hb.IntervalMs != 20 {
			t.Fatalf("beat seq %d after %d, interval %dms", hb.Seq, last, hb.IntervalMs)
		}
		last = hb.Seq
	}
}

func TestWorker_Stop_PublishesDrainingThenStopped(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	w := e.worker(&echo{})
	first := nextBeat(t, beats)
	if first.State != schema.StateReady {
		t.Fatalf("first beat %+v", first)
	}
	// The job's freed slot draws a beat that may race Stop's.
	decodeResponse(t, e.request(job(t, w, ask("x"))))
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Stop flushed its beats: all are here or on their way, in order.
	states := []string{first.State}
	last := first.Seq
	for states[len(states)-1] != schema.StateStopped {
		hb := nextBeat(t, beats)
		if hb.Seq <= last {
			t.Fatalf("seq %d after %d", hb.Seq, last)
		}
		last = hb.Seq
		if states[len(states)-1] != hb.State {
			states = append(states, hb.State)
		}
	}
	want := []string{schema.StateReady, schema.StateDraining, schema.StateStopped}
	if len(states) != len(want) || states[0] != want[0] || states[1] != want[1] || states[2] != want[2] {
		t.Fatalf("states %v, want %v", states, want)
	}
}

func TestWorker_StopRightAfterStart_BeatsInSeqOrderNeverReadyAfterDraining(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	nc := e.srv.Connect("worker")
	// The first beat (from the beat loop) and Stop's race: repeat to give
	// a worker that lets them overtake each other the chance to show it.
	for i := range 100 {
		w, err := worker.New(worker.Config{Conn: nc, Subjects: e.subjects, Tier: tier, Provider: &echo{},
			HeartbeatInterval: time.Hour, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		var states []string
		var last uint64
		for len(states) == 0 || states[len(states)-1] != schema.StateStopped {
			hb := nextBeat(t, beats)
			if hb.Worker != w.ID() {
				t.Fatalf("round %d: beat of %s, want %s's", i, hb.Worker, w.ID())
			}
			if hb.Seq <= last {
				t.Fatalf("round %d: seq %d published after %d", i, hb.Seq, last)
			}
			last = hb.Seq
			if len(states) > 0 && states[len(states)-1] == schema.StateDraining && hb.State == schema.StateReady {
				t.Fatalf("round %d: ready after draining", i)
			}
			states = append(states, hb.State)
		}
	}
}

func TestWorker_Heartbeat_BeatsWhenASecondDispatchersJobTakesASlot(t *testing.T) {
	t.Parallel()
	e := setup(t)
	beats := e.beats()
	g := e.gate()
	// Beats an hour apart and no slot freed while the gate is shut: only
	// the accepted job can cause the beat awaited. Each dispatcher knows
	// only its own jobs since the last beat; the beat tells the other
	// that the slot is taken before it fills it too.
	w := e.worker(g, func(c *worker.Config) { c.Concurrency = 3 })
	nextBeat(t, beats)
	a := e.requestAsync(job(t, w, ask("a"), schema.HeaderDispatcher, "d-one"))
	g.awaitStarted(t, 1)
	b := e.requestAsync(job(t, w, ask("b"), schema.HeaderDispatcher, "d-two"))
	hb := awaitBeat(t, beats, "a beat showing both dispatchers' jobs in flight", func(hb schema.Heartbeat) bool { return hb.InFlight == 2 })
	if want := map[string]uint64{"d-one": 1, "d-two": 1}; !maps.Equal(hb.Received, want) || hb.Completed != 0 {
		t.Errorf("beat received %v completed %d, want %v and none completed", hb.Received, hb.Completed, want)
	}
	g.open()
	awaitReply(t, a)
	awaitReply(t, b)
}
