package dispatcher

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
)

// BenchmarkOnJob is the hot path: a producer's job (JSON, with a deadline)
// taken by onJob and forwarded at once to a worker with a free slot, over
// a real connection. The worker's subject has no subscriber: the server
// drops the forward.
func BenchmarkOnJob(b *testing.B) {
	srv := brokertest.NewServer(b, brokertest.Options{})
	subjects := brokertest.Subjects(b)
	d, err := New(Config{Conn: srv.Connect("bench"), Subjects: subjects, Tiers: []string{"tier1"}, Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	w := &worker{
		subject: subjects.Worker("w1"),
		hb:      schema.Heartbeat{Worker: "w1", Tier: "tier1", Deployment: "dep", State: schema.StateReady, Capacity: 1 << 20},
	}
	d.tiers["tier1"].workers = []*worker{w}
	body := []byte(`{"messages":[{"role":"user","content":"hello"}]}`)
	deadline := []string{strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}
	m := &nats.Msg{
		Subject: subjects.Jobs("tier1"), Reply: "_INBOX.abcdefghijklmnopqrstuv.12345678",
		Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}, schema.HeaderDeadline: deadline},
		Data:   body,
	}
	stamped := []string{schema.HeaderDispatcher, schema.HeaderJobSeq, schema.HeaderQueuedUs, schema.HeaderQueueWaitUs}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d.onJob(m)
		// Restore the producer's headers, as a new job would bring them.
		for _, k := range stamped {
			delete(m.Header, k)
		}
		m.Header[schema.HeaderDeadline] = deadline
		if i%1024 == 1023 {
			d.mu.Lock()
			clear(w.jobs)
			w.seen = w.sent
			d.mu.Unlock()
		}
	}
	b.StopTimer()
	if got := d.dispatched.Load(); got != uint64(b.N) {
		b.Fatalf("dispatched %d of %d", got, b.N)
	}
}

// BenchmarkOnJobLimited is BenchmarkOnJob with usage limits on every
// deployment: 8 workers of 4 deployments (so usage is summed over two
// workers each), picked by the usage-based and the cost-based strategies.
// Routing under limits must not allocate more than routing without.
func BenchmarkOnJobLimited(b *testing.B) {
	for _, strategy := range []string{config.UsageBased, config.CostBased} {
		b.Run(strategy, func(b *testing.B) {
			srv := brokertest.NewServer(b, brokertest.Options{})
			subjects := brokertest.Subjects(b)
			d, err := New(Config{Conn: srv.Connect("bench"), Subjects: subjects, Tiers: []string{"tier1"}, Strategy: strategy, Logger: discard()})
			if err != nil {
				b.Fatal(err)
			}
			t := d.tiers["tier1"]
			for i := range 8 {
				id := "w" + strconv.Itoa(i)
				t.workers = append(t.workers, &worker{subject: subjects.Worker(id), hb: schema.Heartbeat{
					Worker: id, Tier: "tier1", Deployment: "dep" + strconv.Itoa(i/2), State: schema.StateReady, Capacity: 1 << 20,
					RPM: 1 << 40, TPM: 1 << 50, RPMUsed: int64(100 * i), TPMUsed: int64(10000 * i),
					InputCostPerToken: float64(i+1) * 1e-6, OutputCostPerToken: 2e-6,
				}})
			}
			t.reshare()
			body := []byte(`{"messages":[{"role":"user","content":"hello"}]}`)
			deadline := []string{strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}
			m := &nats.Msg{
				Subject: subjects.Jobs("tier1"), Reply: "_INBOX.abcdefghijklmnopqrstuv.12345678",
				Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}, schema.HeaderDeadline: deadline},
				Data:   body,
			}
			stamped := []string{schema.HeaderDispatcher, schema.HeaderJobSeq, schema.HeaderQueuedUs, schema.HeaderQueueWaitUs}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				d.onJob(m)
				for _, k := range stamped {
					delete(m.Header, k)
				}
				m.Header[schema.HeaderDeadline] = deadline
				if i%1024 == 1023 {
					d.mu.Lock()
					for _, w := range t.workers {
						clear(w.jobs)
						w.seen = w.sent
					}
					d.mu.Unlock()
				}
			}
			b.StopTimer()
			if got := d.dispatched.Load(); got != uint64(b.N) {
				b.Fatalf("dispatched %d of %d", got, b.N)
			}
		})
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkJobChecks is what issue 10 added to every job: the reply
// subject check and the removal of internal headers (none present).
func BenchmarkJobChecks(b *testing.B) {
	s := brokertest.Subjects(b)
	h := nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}, schema.HeaderDeadline: {"1795856577000"}}
	reply := "_INBOX.abcdefghijklmnopqrstuv.12345678"
	b.ReportAllocs()
	for b.Loop() {
		if s.CheckReply(reply) != nil || stripInternal(h) != 0 {
			b.Fatal("refused")
		}
	}
}

// BenchmarkPick is the routing decision alone (candidates and strategy)
// over 8 workers of 4 deployments: with usage limits it must stay
// allocation-free.
func BenchmarkPick(b *testing.B) {
	for _, tc := range []struct {
		strategy string
		limited  bool
	}{{config.SimpleShuffle, false}, {config.LeastBusy, false}, {config.ShortestExpectedDelay, false}, {config.SimpleShuffle, true}, {config.UsageBased, true}, {config.CostBased, true}} {
		name := tc.strategy
		if tc.limited {
			name += "/limited"
		}
		b.Run(name, func(b *testing.B) {
			d := &Dispatcher{cfg: Config{Strategy: tc.strategy}, rng: rand.New(rand.NewPCG(1, 2))}
			t := &tier{name: "tier1"}
			for i := range 8 {
				hb := schema.Heartbeat{Worker: "w" + strconv.Itoa(i), Deployment: "dep" + strconv.Itoa(i/2), State: schema.StateReady, Capacity: 64,
					InputCostPerToken: float64(i+1) * 1e-6, OutputCostPerToken: 2e-6}
				if tc.limited {
					hb.RPM, hb.TPM, hb.RPMUsed, hb.TPMUsed = 1000, 1e6, int64(10*i), int64(1000*i)
				}
				t.workers = append(t.workers, &worker{hb: hb})
			}
			t.reshare()
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if d.pick(t, nil, now) == nil {
					b.Fatal("no worker")
				}
			}
		})
	}
}

// BenchmarkOnJobTags is onJob with tag routing on (enable_tag_filtering),
// three workers of which one takes the job: tags in the Llmq-Tags header
// (what the Go client and the gateway send), in the body's metadata.tags
// (read from the body once), or none (the body is only searched for the
// bytes "tags"). "off" is the same fleet with tag routing off.
func BenchmarkOnJobTags(b *testing.B) {
	prompt := strings.Repeat("lorem ipsum ", 80) // a ~1 KB job
	cases := []struct {
		name   string
		filter bool
		header string
		body   string
	}{
		{"off", false, "", `{"messages":[{"role":"user","content":"` + prompt + `"}]}`},
		{"untagged", true, "", `{"messages":[{"role":"user","content":"` + prompt + `"}]}`},
		{"header", true, "paid", `{"messages":[{"role":"user","content":"` + prompt + `"}]}`},
		{"body", true, "", `{"messages":[{"role":"user","content":"` + prompt + `"}],"metadata":{"tags":["paid"],"user":"u1"}}`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			srv := brokertest.NewServer(b, brokertest.Options{})
			subjects := brokertest.Subjects(b)
			d, err := New(Config{Conn: srv.Connect("bench"), Subjects: subjects, Tiers: []string{"tier1"}, Logger: discard(), TagFiltering: c.filter})
			if err != nil {
				b.Fatal(err)
			}
			var ws []*worker
			for i, tags := range [][]string{{"free"}, {"paid"}, {"default"}} {
				id := "w" + strconv.Itoa(i)
				ws = append(ws, &worker{subject: subjects.Worker(id), hb: schema.Heartbeat{Worker: id, Tier: "tier1", Deployment: id,
					State: schema.StateReady, Capacity: 1 << 20, Tags: tags}})
			}
			d.tiers["tier1"].workers = ws
			deadline := []string{strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}
			m := &nats.Msg{Subject: subjects.Jobs("tier1"), Reply: "_INBOX.abcdefghijklmnopqrstuv.12345678",
				Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}, schema.HeaderDeadline: deadline}, Data: []byte(c.body)}
			stamped := []string{schema.HeaderDispatcher, schema.HeaderJobSeq, schema.HeaderQueuedUs, schema.HeaderQueueWaitUs, schema.HeaderTags}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if c.header != "" {
					m.Header[schema.HeaderTags] = []string{c.header}
				}
				d.onJob(m)
				for _, k := range stamped {
					delete(m.Header, k)
				}
				m.Header[schema.HeaderDeadline] = deadline
				if i%1024 == 1023 {
					d.mu.Lock()
					for _, w := range ws {
						clear(w.jobs)
						w.seen = w.sent
					}
					d.mu.Unlock()
				}
			}
			b.StopTimer()
			if got := d.dispatched.Load(); got != uint64(b.N) {
				b.Fatalf("dispatched %d of %d", got, b.N)
			}
		})
	}
}
