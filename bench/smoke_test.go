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
	// The GPU hosts section has its own test (TestHostsSection).
	o.Sections = []string{bench.SectionLatency, bench.SectionThroughput, bench.SectionRouting, bench.SectionMemory}
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
	if len(res.Targets) != 7 {
		t.Errorf("%d targets, want 7: %+v", len(res.Targets), res.Targets)
	}

	var md bytes.Buffer
	if err := res.Markdown(&md, "## Notes\n\nhand-written"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# llmq benchmarks", "## Targets", "## 1. Added latency", "## 2. Throughput ceiling",
		"## 3. Routing quality", "## 4. Memory", "hand-written", "| " + bench.OracleJSQ + " |", res.Env.Go} {
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
	if !reflect.DeepEqual(back.Targets, res.Targets) || !reflect.DeepEqual(back.Routing, res.Routing) || !reflect.DeepEqual(back.Memory, res.Memory) {
		t.Error("results do not read back as written")
	}
}

func TestRunRejectsUnknownSection(t *testing.T) {
	t.Parallel()
	if _, err := bench.Run(context.Background(), bench.Options{Sections: []string{"nope"}}); err == nil {
		t.Error("an unknown section was accepted")
	}
}
