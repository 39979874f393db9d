package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/bench"
)

// TestResidencySection runs the residency section alone, briefly. It asserts
// that the harness works — every layout runs, counts add up, loads are
// counted, the report renders with its targets — never how fast.
func TestResidencySection(t *testing.T) {
	t.Parallel()
	o := bench.Quick()
	o.Sections = []string{bench.SectionResidency}
	o.ResidencyDuration = time.Second
	var log bytes.Buffer
	o.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, log.String())
	}
	h := res.Residency
	if h == nil || len(h.Runs) != 4 {
		t.Fatalf("hosts section: %+v, want 4 layouts", h)
	}
	for _, run := range h.Runs {
		failed := 0
		for _, n := range run.Errors {
			failed += n
		}
		if run.OK == 0 || failed != run.Failed || run.Latency.N != run.OK || run.TurnsPerSecond <= 0 ||
			run.Loads < h.MinLoads || len(run.Resident) != 3 {
			t.Errorf("%s: %+v; want answered turns, counts that add up, at least %d loads, 3 hosts", run.Layout, run, h.MinLoads)
		}
	}
	if len(res.Targets) != 2 {
		t.Errorf("targets %+v, want the two GPU hosts bars", res.Targets)
	}
	var md bytes.Buffer
	if err := res.Markdown(&md, ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## 7. GPU hosts: model residency", "| " + bench.LayoutHand + " |", "| " + bench.LayoutPerHost + " |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
