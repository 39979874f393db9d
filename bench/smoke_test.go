package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/bench"
)

// TestSmoke runs every section with small numbers against a freshly built
// llmq binary. It asserts that the harness works — results complete,
// counts that add up, a report that renders and results that read back —
// never how fast anything was.
func TestSmoke(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "llmq")
	build := exec.Command("go", "build", "-o", bin, "./cmd/llmq")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o := bench.Quick()
	o.LLMQ = bin
	// The residency section has its own test (TestResidencySection).
	o.Sections = []string{bench.SectionLatency, bench.SectionThroughput, bench.SectionRouting, bench.SectionMemory,
		bench.SectionGateway, bench.SectionHosts}
	var log bytes.Buffer
	o.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, log.String())
	}

	load := func(name string, r bench.LoadResult) {
		t.Helper()
		total := 0
		for _, n := range r.Errors {
			total += n
		}
		if r.Sent == 0 || r.OK == 0 || r.Sent != r.OK+r.Failed || total != r.Failed || r.Latency.N != r.OK {
			t.Errorf("%s: sent %d ok %d failed %d errors %v latency n %d: want calls that succeed and counts that add up",
				name, r.Sent, r.OK, r.Failed, r.Errors, r.Latency.N)
		}
	}
	if res.Latency == nil || len(res.Latency.Runs) != len(o.Rates) {
		t.Fatalf("latency section: %+v, want %d runs", res.Latency, len(o.Rates))
	}
	for _, run := range res.Latency.Runs {
		load("latency echo", run.Echo)
		load("latency direct", run.Direct)
		load("latency llmq", run.LLMQ)
		if want := run.LLMQ.Latency.P50Us - run.Direct.Latency.P50Us; run.Added.P50Us != want {
			t.Errorf("added p50 %v, want llmq - direct = %v", run.Added.P50Us, want)
		}
	}
	tp := res.Throughput
	if tp == nil || len(tp.Processes.Steps) == 0 || len(tp.InProcess.Steps) == 0 {
		t.Fatalf("throughput section: %+v, want steps in both topologies", tp)
	}
	for _, c := range []bench.Ceiling{tp.Processes, tp.InProcess} {
		for _, s := range c.Steps {
			load("throughput echo", s.Echo)
			load("throughput llmq", s.LLMQ)
		}
	}
	if tp.Profile == nil && tp.ProfileMissing == "" {
		t.Error("no profile and no reason for none")
	}
	if p := tp.Profile; p != nil {
		sum := 0.0
		for _, c := range p.Components {
			sum += c.Percent
		}
		if len(p.Components) > 0 && math.Abs(sum-100) > 0.01 {
			t.Errorf("profile components add up to %.2f%%", sum)
		}
	}

	rt := res.Routing
	wantRuns := len(o.Loads) * (len(o.Strategies)*len(o.Dispatchers) + 2)
	if rt == nil || len(rt.Runs) != wantRuns {
		t.Fatalf("routing section: %d runs, want %d", len(rt.Runs), wantRuns)
	}
	jobs := rt.Runs[0].Jobs
	for _, run := range rt.Runs {
		share := 0.0
		for _, s := range run.Share {
			share += s
		}
		if run.Jobs != jobs || run.OK+run.Failed != run.Jobs || run.OK == 0 || math.Abs(share-1) > 1e-9 {
			t.Errorf("routing %s ×%d: %d jobs (want %d), %d ok, %d failed, shares add up to %v",
				run.Router, run.Dispatchers, run.Jobs, jobs, run.OK, run.Failed, share)
		}
	}

	m := res.Memory
	if m == nil || len(m.Rows) != 3 {
		t.Fatalf("memory section: %+v, want 3 rows", m)
	}
	for _, row := range m.Rows {
		if row.Jobs != o.InFlight || row.IdleBytes <= 0 || row.LoadedBytes <= 0 || row.Completed != o.InFlight {
			t.Errorf("memory %s (%s): %+v, want %d jobs, RSS read, every job answered", row.Process, row.Case, row, o.InFlight)
		}
	}
	gw := res.Gateway
	if gw == nil || len(gw.Paths) != 4 {
		t.Fatalf("gateway section: %+v, want 4 paths", gw)
	}
	load("gateway echo", gw.Echo)
	for _, p := range gw.Paths {
		load("gateway "+p.Name+" peak", p.Peak)
		load("gateway "+p.Name+" one client", p.One)
		load("gateway "+p.Name+" fixed rate", p.Fixed)
		if (p.Name == bench.PathDirect) != (len(p.Processes) == 0) {
			t.Errorf("gateway %s: hop processes %v", p.Name, p.Processes)
		}
		for _, name := range p.Processes {
			if _, ok := p.PeakCPU.PerCallUs[name]; !ok {
				t.Errorf("gateway %s: no CPU read for process %s (have %v)", p.Name, name, p.PeakCPU.PerCallUs)
			}
		}
		if want := p.One.Latency.P50Us - gw.Paths[0].One.Latency.P50Us; p.AddedOne.P50Us != want {
			t.Errorf("gateway %s: added p50 %v, want path - direct = %v", p.Name, p.AddedOne.P50Us, want)
		}
	}
	if gw.Profile == nil && gw.ProfileMissing == "" {
		t.Error("gateway: no profile and no reason for none")
	}
	if len(gw.Targets) != 3 {
		t.Errorf("gateway: %d targets, want 3: %+v", len(gw.Targets), gw.Targets)
	}
	h := res.Hosts
	wantSpeed := len(o.HostsProducers)*len(o.Dispatchers)*len(o.HostsStrategies) + 1 // + the oracle at 8 producers
	if h == nil || len(h.Speed.Runs) != wantSpeed || len(h.Affinity.Runs) != 7 {
		t.Fatalf("hosts section: %+v, want %d speed runs and 7 affinity runs", h, wantSpeed)
	}
	for _, run := range h.Speed.Runs {
		share := 0.0
		for _, s := range run.Share {
			share += s
		}
		if run.Load.OK == 0 || run.Load.Sent != run.Load.OK+run.Load.Failed || math.Abs(share-1) > 1e-9 {
			t.Errorf("hosts speed %s ×%d: sent %d, ok %d, failed %d, shares add up to %v", run.Router, run.Dispatchers, run.Load.Sent, run.Load.OK, run.Load.Failed, share)
		}
	}
	for _, run := range h.Affinity.Runs {
		st := run.Stats
		if run.Load.OK == 0 || st.Turns < int64(run.Load.OK) || st.Hits+st.Partial > st.Turns-st.First || run.HitRate < 0 || run.HitRate > 1 ||
			(!run.Cache && st.Hits+st.Partial != 0) {
			t.Errorf("hosts affinity %s (affinity %v, cache %v): ok %d, cache counts %+v, hit rate %v", run.Router, run.Affinity, run.Cache, run.Load.OK, st, run.HitRate)
		}
	}
	if len(res.Targets) != 10 {
		t.Errorf("%d targets, want 10: %+v", len(res.Targets), res.Targets)
	}

	var md bytes.Buffer
	if err := res.Markdown(&md, "## Notes\n\nhand-written"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# llmq benchmarks", "## Targets", "## 1. Added latency", "## 2. Throughput ceiling",
		"## 3. Routing quality", "## 4. Memory", "## 5. Gateway", "| llmq up |", "## 6. GPU hosts", "hand-written", "| " + bench.OracleJSQ + " |", res.Env.Go} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Results
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Targets, res.Targets) || !reflect.DeepEqual(back.Routing, res.Routing) || !reflect.DeepEqual(back.Memory, res.Memory) ||
		!reflect.DeepEqual(back.Hosts, res.Hosts) {
		t.Error("results do not read back as written")
	}
}

func TestRunRejectsUnknownSection(t *testing.T) {
	t.Parallel()
	if _, err := bench.Run(context.Background(), bench.Options{Sections: []string{"nope"}}); err == nil {
		t.Error("an unknown section was accepted")
	}
}
