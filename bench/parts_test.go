package bench_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/llmq/llmq/bench"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
	"github.com/llmq/llmq/worker/provider/ollama"
	"github.com/llmq/llmq/worker/provider/openai"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 1000; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Microsecond)
	}
	s := bench.Summarize(ds)
	want := bench.Summary{N: 1000, MeanUs: 500.5, P50Us: 500, P90Us: 900, P99Us: 990, P999Us: 999, MaxUs: 1000}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if got := bench.Summarize(nil); got != (bench.Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
	if q := bench.Quantile(ds[:1], 0.999); q != time.Microsecond {
		t.Errorf("Quantile of one = %v", q)
	}
}

func TestSchedules(t *testing.T) {
	t.Parallel()
	f := bench.Fixed(1000, 2*time.Second)
	if len(f) != 2000 || f[0] != 0 || f[1] != time.Millisecond || f[1999] != 1999*time.Millisecond {
		t.Errorf("Fixed: %d calls, first %v %v, last %v", len(f), f[0], f[1], f[len(f)-1])
	}
	p := bench.Poisson(1000, 2*time.Second, 7)
	q := bench.Poisson(1000, 2*time.Second, 7)
	if len(p) != len(q) || len(p) < 1000 || len(p) > 3000 {
		t.Fatalf("Poisson: %d and %d calls, want the same, about 2000", len(p), len(q))
	}
	for i := range p {
		if p[i] != q[i] || p[i] >= 2*time.Second || (i > 0 && p[i] < p[i-1]) {
			t.Fatalf("Poisson call %d at %v (again %v): not repeatable, in order and within the run", i, p[i], q[i])
		}
	}
}

func TestOpenLoopCountsAddUp(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[int]bool{}
	r := bench.OpenLoop(context.Background(), bench.Fixed(2000, 50*time.Millisecond), 20*time.Second, func(_ context.Context, i int) error {
		mu.Lock()
		seen[i] = true
		mu.Unlock()
		if i%2 == 1 {
			return schema.NewError(schema.CodeOverloaded, "odd")
		}
		return nil
	})
	if r.Sent != 100 || r.OK != 50 || r.Failed != 50 || r.Errors[schema.CodeOverloaded] != 50 || len(seen) != 100 {
		t.Errorf("open loop: sent %d ok %d failed %d errors %v, %d distinct calls; want 100, 50, 50, overloaded 50, 100",
			r.Sent, r.OK, r.Failed, r.Errors, len(seen))
	}
	if r.Latency.N != 50 || r.Lag.N != 100 {
		t.Errorf("latency over %d calls and lag over %d, want 50 and 100", r.Latency.N, r.Lag.N)
	}
}

func TestOpenLoopStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	r := bench.OpenLoop(ctx, bench.Fixed(1, time.Hour), 20*time.Second, func(context.Context, int) error {
		cancel()
		return nil
	})
	if r.Sent != 1 || r.OK != 1 {
		t.Errorf("cancelled after the first call: sent %d ok %d, want 1 and 1", r.Sent, r.OK)
	}
}

func TestClosedLoopCountsAddUp(t *testing.T) {
	t.Parallel()
	r := bench.ClosedLoop(context.Background(), 4, 50*time.Millisecond, 20*time.Second, func(_ context.Context, i int) error {
		time.Sleep(time.Millisecond) // stands in for a call
		if i%3 == 0 {
			return context.DeadlineExceeded
		}
		return nil
	})
	if r.Sent == 0 || r.Sent != r.OK+r.Failed || r.Errors["timeout"] != r.Failed || r.Latency.N != r.OK {
		t.Errorf("closed loop: sent %d ok %d failed %d errors %v latency n %d: counts do not add up", r.Sent, r.OK, r.Failed, r.Errors, r.Latency.N)
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		schema.NewError(schema.CodeRateLimited, "x"): schema.CodeRateLimited,
		context.DeadlineExceeded:                     "timeout",
		errors.New("boom"):                           "error",
	} {
		if got := bench.ErrorCode(err); got != want {
			t.Errorf("ErrorCode(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestOpenAIServerAnswersAndHolds(t *testing.T) {
	t.Parallel()
	s, err := bench.StartOpenAI("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hc := provider.NewHTTPClient()
	defer hc.CloseIdleConnections()
	p, err := openai.New(provider.Options{Model: "bench", APIBase: s.URL(), HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	n := 4
	req := &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "hi"}}, MaxTokens: &n}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := p.Complete(ctx, req)
	if err != nil || resp.Text() == "" || resp.Usage.CompletionTokens == 0 {
		t.Fatalf("Complete = %+v, %v; want a completion with usage", resp, err)
	}
	held := *req
	held.User = bench.HoldUser
	done := make(chan error, 1)
	go func() {
		_, err := p.Complete(ctx, &held)
		done <- err
	}()
	for s.Stats().Held != 1 {
		select {
		case err := <-done:
			t.Fatalf("held call returned before Release: %v", err)
		case <-ctx.Done():
			t.Fatal("the call was never held")
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.Release()
	if err := <-done; err != nil {
		t.Fatalf("held call after Release: %v", err)
	}
	if st := s.Stats(); st.Served != 2 || st.Held != 0 {
		t.Errorf("stats %+v, want 2 served, none held", st)
	}
	resp2, err := http.Get(s.URL() + "/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /chat/completions: %d, want 405", resp2.StatusCode)
	}
}

func TestOllamaHostServesAndAnswersBusy(t *testing.T) {
	t.Parallel()
	h, err := bench.StartOllama(bench.HostSpec{Name: "h", Parallel: 1, MaxQueue: 1, TTFT: time.Hour, TokensPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	hc := provider.NewHTTPClient()
	defer hc.CloseIdleConnections()
	p, err := ollama.New(provider.Options{Model: "bench", APIBase: h.URL(), HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	n := 8
	req := &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: "hi"}}, MaxTokens: &n}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hold, release := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 { // one in the slot, one in the queue
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = p.Complete(hold, req)
		}()
	}
	for h.InFlight() != 1 || h.Waiting() != 1 {
		select {
		case <-ctx.Done():
			t.Fatalf("in flight %d, waiting %d: want 1 and 1", h.InFlight(), h.Waiting())
		case <-time.After(5 * time.Millisecond):
		}
	}
	_, err = p.Complete(ctx, req)
	if schema.CodeOf(err) != schema.CodeRateLimited {
		t.Errorf("third chat: %v, want rate_limited (Ollama's 503 server busy)", err)
	}
	release()
	wg.Wait()
	if st := h.Stats(); st.Busy != 1 || st.Served != 0 || st.MaxInFlight != 1 || st.MaxWaiting != 1 {
		t.Errorf("stats %+v, want 1 busy, none served, max 1 in flight and 1 waiting", st)
	}

	fast, err := bench.StartOllama(bench.HostSpec{Name: "fast", Parallel: 2, MaxQueue: 2, TokensPerSecond: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	pf, err := ollama.New(provider.Options{Model: "bench", APIBase: fast.URL(), HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := pf.Complete(ctx, req)
	if err != nil || resp.Usage.CompletionTokens != n {
		t.Fatalf("Complete = %+v, %v; want %d completion tokens", resp, err, n)
	}
	if st := fast.Stats(); st.Served != 1 {
		t.Errorf("served %d, want 1", st.Served)
	}
}

func TestHostSpec(t *testing.T) {
	t.Parallel()
	h := bench.HostSpec{Parallel: 2, TTFT: 10 * time.Millisecond, TokensPerSecond: 1000}
	if got := h.Service(40); got != 50*time.Millisecond {
		t.Errorf("Service(40) = %v, want 50ms", got)
	}
	if got := h.Capacity(40); got < 39.99 || got > 40.01 {
		t.Errorf("Capacity(40) = %v, want 40 jobs/s", got)
	}
}

func TestOracles(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	one := []bench.HostSpec{{Name: "a", Parallel: 1, MaxQueue: 1, TTFT: 10 * ms, TokensPerSecond: 1000}}
	jobs := []bench.SimJob{{At: 0, Tokens: 10}, {At: 5 * ms, Tokens: 10}, {At: 6 * ms, Tokens: 10}, {At: 45 * ms, Tokens: 10}}
	for name, out := range map[string]bench.SimOutcome{
		"jsq": bench.SimulateJSQ(one, jobs, 10, 0),
		"ect": bench.SimulateECT(one, jobs, 0),
	} {
		// 20 ms each: the first runs at once, the second waits for it, the
		// third finds the queue full, the fourth a free slot.
		wantHost := []int{0, 0, -1, 0}
		wantLat := []time.Duration{20 * ms, 35 * ms, 0, 20 * ms}
		for i := range jobs {
			if out.Host[i] != wantHost[i] || out.Latency[i] != wantLat[i] {
				t.Errorf("%s job %d: host %d in %v, want host %d in %v", name, i, out.Host[i], out.Latency[i], wantHost[i], wantLat[i])
			}
		}
	}
	if out := bench.SimulateJSQ(one, jobs[:1], 10, ms); out.Latency[0] != 21*ms {
		t.Errorf("extra time: %v, want 21ms", out.Latency[0])
	}

	// A fast host with two slots and a slow one with one: JSQ counts jobs
	// per slot, ECT finishing times.
	two := []bench.HostSpec{
		{Name: "fast", Parallel: 2, MaxQueue: 8, TokensPerSecond: 1000},
		{Name: "slow", Parallel: 1, MaxQueue: 8, TokensPerSecond: 100},
	}
	burst := []bench.SimJob{{At: 0, Tokens: 10}, {At: 0, Tokens: 10}, {At: 0, Tokens: 10}}
	jsq := bench.SimulateJSQ(two, burst, 10, 0)
	if jsq.Host[0] != 0 || jsq.Host[1] != 1 || jsq.Host[2] != 0 {
		t.Errorf("JSQ hosts %v, want [0 1 0]: the fast host first, then the emptier", jsq.Host)
	}
	ect := bench.SimulateECT(two, burst, 0)
	if ect.Host[0] != 0 || ect.Host[1] != 0 || ect.Host[2] != 0 || ect.Latency[2] != 20*ms {
		t.Errorf("ECT hosts %v latencies %v, want all on the fast host, the third done at 20ms", ect.Host, ect.Latency)
	}
}

func TestSummarizeProfile(t *testing.T) {
	t.Parallel()
	fn := func(id uint64, name string) *profile.Function { return &profile.Function{ID: id, Name: name} }
	fns := []*profile.Function{
		fn(1, "internal/runtime/syscall/linux.Syscall6"),
		fn(2, "github.com/nats-io/nats%2ego.(*Conn).flusher"),
		fn(3, "github.com/llmq/llmq/dispatcher.(*Dispatcher).onJob"),
		fn(4, "github.com/vmihailenco/msgpack/v5.Unmarshal"),
		fn(5, "github.com/llmq/llmq/worker.(*Worker).handle"),
		fn(6, "runtime.gcBgMarkWorker"),
		fn(7, "runtime.mallocgc"),
	}
	loc := func(id uint64, f *profile.Function) *profile.Location {
		return &profile.Location{ID: id, Line: []profile.Line{{Function: f}}}
	}
	var locs []*profile.Location
	for i, f := range fns {
		locs = append(locs, loc(uint64(i+1), f))
	}
	sample := func(v int64, ls ...*profile.Location) *profile.Sample {
		return &profile.Sample{Value: []int64{1, v}, Location: ls}
	}
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		DurationNanos: 1e9,
		Function:      fns,
		Location:      locs,
		Sample: []*profile.Sample{
			sample(40, locs[0], locs[1], locs[2]), // a syscall in nats.go's flusher: NATS client
			sample(30, locs[6], locs[3], locs[4]), // malloc in msgpack under the worker: codec
			sample(20, locs[2]),                   // the dispatcher itself
			sample(10, locs[6], locs[5]),          // GC
		},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := bench.SummarizeProfile(buf.Bytes(), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"NATS client (nats.go)": 40, "codec (msgpack, JSON, schema)": 30, "dispatcher": 20, "Go runtime: GC": 10}
	if len(got.Components) != len(want) {
		t.Fatalf("components %+v, want %v", got.Components, want)
	}
	for _, c := range got.Components {
		if want[c.Name] != c.Percent {
			t.Errorf("component %s: %.1f%%, want %.1f%%", c.Name, c.Percent, want[c.Name])
		}
	}
	if len(got.Top) != 2 || got.Top[0].Name != fns[0].Name || got.Top[0].Percent != 40 {
		t.Errorf("top %+v, want the syscall first at 40%%, two entries", got.Top)
	}
	// Cumulative: the dispatcher's onJob is on the stacks of 40 + 20.
	if len(got.TopCum) != 2 || got.TopCum[0].Name != fns[2].Name || got.TopCum[0].Percent != 60 {
		t.Errorf("top cum %+v, want onJob first at 60%%, two entries", got.TopCum)
	}
	if got.CPUSeconds != 1e-7 || got.Seconds != 1 {
		t.Errorf("cpu %v s in %v s, want 1e-7 and 1", got.CPUSeconds, got.Seconds)
	}
	if _, err := bench.SummarizeProfile([]byte("not a profile"), 5); err == nil {
		t.Error("a broken profile was read without error")
	}
}

func TestMergeMarkdown_ReplacesSectionsRunAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	old := "# llmq benchmarks\n\nold header\n\n## Targets (issue 6)\n\nold targets\n\n## Reading these numbers\n\nold notes\n\n" +
		"## 1. Added latency\n\nold latency\n\n```\n## not a heading\n```\n\n## 5. Gateway: cost per HTTP request\n\nold gateway\n"
	fresh := "# llmq benchmarks\n\nnew header\n\n## Targets (issue 6)\n\n\n## Reading these numbers\n\nnew notes\n\n## Gateway notes\n\nnew gateway notes\n\n" +
		"## 5. Gateway: cost per HTTP request\n\nnew gateway\n\n## 6. Later\n\nnew later\n"
	got := bench.MergeMarkdown(old, fresh)
	want := "# llmq benchmarks\n\nold header\n\n## Targets (issue 6)\n\nold targets\n\n## Reading these numbers\n\nnew notes\n\n## Gateway notes\n\nnew gateway notes\n\n" +
		"## 1. Added latency\n\nold latency\n\n```\n## not a heading\n```\n\n## 5. Gateway: cost per HTTP request\n\nnew gateway\n\n## 6. Later\n\nnew later\n"
	if got != want {
		t.Errorf("MergeMarkdown:\n%s\nwant:\n%s", got, want)
	}
	if again := bench.MergeMarkdown(got, fresh); again != got {
		t.Errorf("a second merge of the same run changed the file:\n%s", again)
	}
}
