package dispatcher

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// host is a worker as a beat describes it: slots, jobs in flight and
// median latency per job.
func host(name string, slots, inFlight int, ms float64) *worker {
	return &worker{hb: schema.Heartbeat{Worker: name, Deployment: name, State: schema.StateReady, Capacity: slots,
		InFlight: inFlight, LatencyMs: ms, Samples: 10, IntervalMs: 1000}}
}

// abcd is the A/B/C/D fleet of issue 13 with A and B full.
func abcd() *tier {
	return &tier{name: "fleet", workers: []*worker{
		host("a", 4, 4, 130), host("b", 4, 4, 130), host("c", 2, 0, 260), host("d", 1, 0, 520),
	}}
}

func TestShortestDelay_WaitsForBusyFastHostRatherThanFreeSlowOne(t *testing.T) {
	t.Parallel()
	tr := abcd()
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	cands := tr.candidates(nil, nil, now)
	w, wait, _ := tr.shortestDelay(cands, nil, now, 7, "d", rng)
	if w != nil || wait == nil || (wait.hb.Worker != "a" && wait.hb.Worker != "b") {
		t.Fatalf("picked %v, wait for %v; want to wait for a or b (5/4 × 130 ms beats 260 ms on c)", name(w), name(wait))
	}
}

func TestShortestDelay_FreeFastHostFirst_ThenSlowerOnlyWhenItFinishesSooner(t *testing.T) {
	t.Parallel()
	tr := abcd()
	tr.workers[0].hb.InFlight = 3 // a has one slot free
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	cands := tr.candidates(nil, nil, now)
	if w, _, _ := tr.shortestDelay(cands, nil, now, 7, "d", rng); name(w) != "a" {
		t.Fatalf("picked %s, want a's free slot", name(w))
	}
	// With a and b each owed four queued jobs, a fifth is expected to
	// finish after (4+4+1)/4 × 130 = 292 ms there: c (260 ms) is sooner.
	tr.workers[0].hb.InFlight = 4
	tr.workers[0].held, tr.workers[1].held = 4, 4
	cands = tr.candidates(nil, nil, now)
	if w, wait, _ := tr.shortestDelay(cands, nil, now, 7, "d", rng); name(w) != "c" {
		t.Fatalf("picked %s (wait for %s), want c", name(w), name(wait))
	}
}

func TestShortestDelay_UnmeasuredWorkerCountsAsFastestKnown(t *testing.T) {
	t.Parallel()
	tr := abcd()
	fresh := host("e", 1, 0, 0)
	fresh.hb.Samples = 0
	tr.workers = append(tr.workers, fresh)
	now := time.Now()
	cands := tr.candidates(nil, nil, now)
	if w, _, _ := tr.shortestDelay(cands, nil, now, 7, "d", rand.New(rand.NewPCG(1, 2))); name(w) != "e" {
		t.Fatalf("picked %s, want the untried e (taken for 130 ms, free)", name(w))
	}
}

func TestShortestDelay_RemembersLatencyWhenBeatsHaveNoSamples(t *testing.T) {
	t.Parallel()
	w := host("d", 1, 0, 0)
	w.hb.Samples = 0
	w.lastLatencyMs = 520
	if got := w.perJob(); got != 520 {
		t.Fatalf("perJob %v, want the last known 520", got)
	}
	w.lastLatencyMs = 0
	sent := time.Now()
	w.observe(sent, sent.Add(400*time.Millisecond))
	w.observe(sent, sent.Add(600*time.Millisecond))
	if got := w.perJob(); got < 430 || got > 450 {
		t.Fatalf("perJob %v, want the moving average of 400 and 600 ms (440)", got)
	}
}

// TestDrainDelay_QueuedJobsSpreadByExpectedFinish drains ten queued jobs
// on the fleet with a and b full: the first six wait for a and b (162,
// 195 and 227 ms, at least a tenth sooner than c's 260), the next two take
// c's slots (waiting would take 260 ms), and the rest wait for a and b
// rather than go to d (520 ms).
func TestDrainDelay_QueuedJobsSpreadByExpectedFinish(t *testing.T) {
	t.Parallel()
	tr := abcd()
	now := time.Now()
	for range 10 {
		tr.queue.push(pending{msg: &nats.Msg{}, arrived: now, deadline: now.Add(time.Minute)}, 100)
	}
	d := &Dispatcher{cfg: Config{Strategy: "shortest-expected-delay"}, rng: rand.New(rand.NewPCG(3, 4))}
	out, fails := d.drainDelay(tr, &tr.queue, now, nil, nil)
	if len(fails) != 0 {
		t.Fatalf("%d failed", len(fails))
	}
	if len(out) != 2 || tr.queue.len() != 8 {
		t.Fatalf("%d sent, %d left; want 2 sent (c's slots), 8 waiting", len(out), tr.queue.len())
	}
	for _, j := range out {
		if name(j.w) != "c" {
			t.Fatalf("a job went to %s, want c", name(j.w))
		}
	}
	for _, w := range tr.workers {
		if w.held != 0 {
			t.Fatalf("%s still counts %d held jobs after the pass", name(w), w.held)
		}
	}
}

func name(w *worker) string {
	if w == nil {
		return "none"
	}
	return w.hb.Worker
}

// TestMine_FreeSlotsAreSharedOutAmongDispatchers: two dispatchers reading
// the same beat (one free slot) do not both fill it; after the grace
// either may; with one dispatcher the slot is always its own.
func TestMine_FreeSlotsAreSharedOutAmongDispatchers(t *testing.T) {
	t.Parallel()
	now := time.Now()
	beat := func() *worker {
		w := host("a", 4, 3, 130)
		w.lastSeen = now
		w.hb.Received = map[string]uint64{"d-1": 10, "d-2": 12}
		return w
	}
	for seq := uint64(1); seq <= 50; seq++ {
		w1, w2 := beat(), beat()
		w1.hb.Seq, w2.hb.Seq = seq, seq
		m1, m2 := w1.mine(hashString("d-1"), "d-1", now), w2.mine(hashString("d-2"), "d-2", now)
		if m1 == m2 {
			t.Fatalf("beat %d: d-1 may fill the one free slot: %v, d-2: %v; want exactly one", seq, m1, m2)
		}
		if !w1.mine(hashString("d-1"), "d-1", now.Add(2*contestGrace)) {
			t.Fatalf("beat %d: after the grace the slot is still not d-1's", seq)
		}
	}
	w := beat()
	w.hb.Received = map[string]uint64{"d-1": 10}
	if !w.mine(hashString("d-1"), "d-1", now) {
		t.Fatal("a lone dispatcher's free slot is not its own")
	}
	// Two free slots and two dispatchers: one each; a second send by the
	// same dispatcher waits.
	w = beat()
	w.hb.InFlight = 2
	if !w.mine(hashString("d-1"), "d-1", now) {
		t.Fatal("d-1 may not fill either of two free slots")
	}
	w.sent, w.seen = 11, 10
	if w.mine(hashString("d-1"), "d-1", now) {
		t.Fatal("d-1 may fill a second slot at once")
	}
}

// TestShare_FreeSlotsGoToTheOldestQueuesFirst: the free slots a beat
// shows are shared out equally among the dispatchers it names, the slots
// that do not divide going to the dispatchers whose queues the beat shows
// oldest; every dispatcher computes the same shares, so that together
// they take each slot exactly once.
func TestShare_FreeSlotsGoToTheOldestQueuesFirst(t *testing.T) {
	t.Parallel()
	ids := []string{"d-1", "d-2", "d-3"}
	for _, tc := range []struct {
		name string
		free int
		ages map[string]int64
		want map[string]int // nil: any, as long as they add up
	}{
		{"one slot: the oldest queue", 1, map[string]int64{"d-1": 5000, "d-2": 90_000, "d-3": 20_000}, map[string]int{"d-2": 1}},
		{"two slots: the two oldest", 2, map[string]int64{"d-1": 5000, "d-2": 90_000, "d-3": 20_000}, map[string]int{"d-2": 1, "d-3": 1}},
		{"four slots: one each, the oldest a second", 4, map[string]int64{"d-1": 5000, "d-2": 90_000, "d-3": 20_000}, map[string]int{"d-1": 1, "d-2": 2, "d-3": 1}},
		{"no age reported: last", 1, map[string]int64{"d-1": 5000}, map[string]int{"d-1": 1}},
		{"no ages: drawn from the beat", 1, nil, nil},
	} {
		drawn := map[string]int{}
		for seq := uint64(1); seq <= 300; seq++ {
			w := host("a", 8, 8-tc.free, 130)
			w.hb.Seq = seq
			w.hb.Received = map[string]uint64{"d-1": 1, "d-2": 1, "d-3": 1}
			w.hb.QueueAgeUs = tc.ages
			total := 0
			for _, id := range ids {
				n := w.share(tc.free, len(ids), hashString(id), id)
				if tc.want != nil && n != tc.want[id] {
					t.Fatalf("%s, beat %d: %s's share %d, want %d", tc.name, seq, id, n, tc.want[id])
				}
				drawn[id] += n
				total += n
			}
			if total != tc.free {
				t.Fatalf("%s, beat %d: shares add up to %d slots, want %d", tc.name, seq, total, tc.free)
			}
		}
		if tc.want == nil {
			for _, id := range ids {
				if drawn[id] < 60 {
					t.Errorf("%s: %s drew %d of 300 slots, want about 100", tc.name, id, drawn[id])
				}
			}
		}
	}
}

// A job does not wait for busy fast workers longer than the free slow one
// would take: a worker whose calls hang must not hold jobs to their
// deadlines while another has room.
func TestShortestDelay_StopsWaitingAfterTheFreeWorkersTime(t *testing.T) {
	t.Parallel()
	tr := abcd()
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	fresh := &pending{arrived: now.Add(-100 * time.Millisecond)}
	cands := tr.candidates(nil, fresh, now)
	if w, wait, _ := tr.shortestDelay(cands, fresh, now, 7, "d", rng); w != nil || wait == nil {
		t.Fatalf("after 100 ms: picked %s, wait for %s; want to wait for a or b", name(w), name(wait))
	}
	stale := &pending{arrived: now.Add(-time.Second)}
	if w, _, _ := tr.shortestDelay(cands, stale, now, 7, "d", rng); name(w) != "c" {
		t.Fatalf("after 1 s: picked %s, want c (260 ms) rather than more waiting", name(w))
	}
}

// TestShortestDelay_OtherDispatchersQueuesCountAsLongAsItsOwn: a and b
// full, each owed two of this dispatcher's queued jobs. Alone, the next
// job is expected after (4+2+1)/4 × 130 ≈ 228 ms there, sooner than 260 ms
// on c by the wait margin: it waits. When the beats show a second
// dispatcher holding jobs on a and b, its unseen queue is taken to be as
// long: (4+2×2+1)/4 × 130 ≈ 292 ms, and c is sooner.
func TestShortestDelay_OtherDispatchersQueuesCountAsLongAsItsOwn(t *testing.T) {
	t.Parallel()
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		holders []string
		want    string
	}{
		{[]string{"d"}, "none"},
		{[]string{"d", "other"}, "c"},
		{[]string{"other"}, "c"}, // this one holds none there yet: still two
	} {
		tr := abcd()
		for _, w := range tr.workers[:2] {
			w.hb.Jobs = map[string][]uint64{}
			for i, h := range tc.holders {
				w.hb.Jobs[h] = []uint64{uint64(i + 1)}
			}
			w.reconcile("d", now)
			w.held = 2
		}
		cands := tr.candidates(nil, nil, now)
		if w, wait, _ := tr.shortestDelay(cands, nil, now, 7, "d", rng); name(w) != tc.want {
			t.Errorf("holders %v: picked %s (wait for %s), want %s", tc.holders, name(w), name(wait), tc.want)
		}
	}
}

// TestShortestDelay_OnlyOlderQueuesOfOthersComeFirst: as in
// TestShortestDelay_OtherDispatchersQueuesCountAsLongAsItsOwn, a and b are
// full and owed two of this dispatcher's queued jobs each, and the beats
// show a second dispatcher. Free slots go to the oldest queues first, so
// its queue comes before a job only when the beats show it older: then
// the job is expected after (4+2×2+1)/4 × 130 ≈ 292 ms on a or b and c is
// sooner; when its queue is younger than the job (or it has none: the
// time since its last job is less), the job waits for a or b, as alone.
func TestShortestDelay_OnlyOlderQueuesOfOthersComeFirst(t *testing.T) {
	t.Parallel()
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	p := &pending{arrived: now.Add(-50 * time.Millisecond)}
	for _, tc := range []struct {
		name     string
		otherAge time.Duration // the other dispatcher's queue age in the beat
		want     string
	}{
		{"older queue", 80 * time.Millisecond, "c"},
		{"younger queue", 20 * time.Millisecond, "none"},
	} {
		tr := abcd()
		for _, w := range tr.workers {
			w.lastSeen = now.Add(-10 * time.Millisecond) // the job is 40 ms old in the beat
			w.hb.Jobs = map[string][]uint64{"d": {1}, "other": {1}}
			w.hb.QueueAgeUs = map[string]int64{"d": 40_000, "other": tc.otherAge.Microseconds()}
			w.reconcile("d", now)
		}
		for _, w := range tr.workers[:2] {
			w.held = 2
		}
		cands := tr.candidates(nil, p, now)
		if w, wait, _ := tr.shortestDelay(cands, p, now, 7, "d", rng); name(w) != tc.want {
			t.Errorf("%s: picked %s (wait for %s), want %s", tc.name, name(w), name(wait), tc.want)
		}
	}
}
