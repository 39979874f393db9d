package bench

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// Share is a part of a whole, in percent.
type Share struct {
	Name    string  `json:"name"`
	Percent float64 `json:"percent"`
}

// CPUProfile summarizes a CPU profile: where the time went by component,
// and the functions that took the most on their own.
type CPUProfile struct {
	// Seconds of wall time profiled; CPUSeconds of CPU time sampled.
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// Components add up to 100.
	Components []Share `json:"components"`
	// Top are the functions with the most flat time (their own code);
	// TopCum those with the most cumulative time (their own and their
	// callees').
	Top    []Share `json:"top"`
	TopCum []Share `json:"top_cum,omitempty"`
}

// components map function name prefixes to the component they belong to.
// A sample counts for the component of the frame nearest its leaf that
// matches one (so the allocation or syscall a component causes is its
// own); samples that match none are the Go runtime's.
var componentPrefixes = []struct {
	name     string
	prefixes []string
}{
	{"codec (msgpack, JSON, schema)", []string{"github.com/vmihailenco/msgpack", "encoding/json.", "github.com/llmq/llmq/schema."}},
	{"NATS server", []string{"github.com/nats-io/nats-server"}},
	{"NATS client (nats.go)", []string{"github.com/nats-io/nats%2ego.", "github.com/nats-io/nats.go."}},
	{"dispatcher", []string{"github.com/llmq/llmq/dispatcher."}},
	{"gateway", []string{"github.com/llmq/llmq/gateway."}},
	{"HTTP (net/http client and server)", []string{"net/http.", "net/textproto."}},
	{"worker", []string{"github.com/llmq/llmq/worker."}},
	{"provider (adapter or simulator)", []string{"github.com/llmq/llmq/worker/provider"}},
	{"broker helpers", []string{"github.com/llmq/llmq/broker."}},
	{"producer (client, load generator)", []string{"github.com/llmq/llmq/client.", "github.com/llmq/llmq/bench."}},
}

// component names the component of a sample's stack, leaf first.
func component(stack []string) string {
	for _, fn := range stack {
		for _, c := range componentPrefixes {
			for _, p := range c.prefixes {
				if strings.HasPrefix(fn, p) {
					return c.name
				}
			}
		}
	}
	for _, fn := range stack {
		if strings.HasPrefix(fn, "runtime.gcBgMarkWorker") || strings.HasPrefix(fn, "runtime.bgsweep") || strings.HasPrefix(fn, "runtime.bgscavenge") {
			return "Go runtime: GC"
		}
	}
	return "Go runtime: scheduler, syscalls, other"
}

// SummarizeProfile reads a CPU profile as runtime/pprof writes it.
func SummarizeProfile(data []byte, top int) (CPUProfile, error) {
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		return CPUProfile{}, fmt.Errorf("bench: cpu profile: %w", err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			idx = i
		}
	}
	if idx < 0 {
		return CPUProfile{}, fmt.Errorf("bench: cpu profile has no cpu samples (types %v)", p.SampleType)
	}
	byComp := map[string]int64{}
	flat := map[string]int64{}
	cum := map[string]int64{}
	var total int64
	var stack []string
	seen := map[string]bool{}
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		stack = stack[:0]
		for _, loc := range s.Location {
			for _, line := range loc.Line { // innermost inlined frame first
				if line.Function != nil {
					stack = append(stack, line.Function.Name)
				}
			}
		}
		byComp[component(stack)] += v
		if len(stack) > 0 {
			flat[stack[0]] += v
		}
		clear(seen)
		for _, fn := range stack { // a recursive function counts once
			if !seen[fn] {
				seen[fn] = true
				cum[fn] += v
			}
		}
	}
	out := CPUProfile{Seconds: float64(p.DurationNanos) / 1e9, CPUSeconds: float64(total) / 1e9}
	out.Components = shares(byComp, total, 0)
	out.Top = shares(flat, total, top)
	out.TopCum = shares(cum, total, top)
	return out, nil
}

// shares turns values into percentages of total, largest first, at most n
// of them (all for n ≤ 0).
func shares(m map[string]int64, total int64, n int) []Share {
	out := make([]Share, 0, len(m))
	for k, v := range m {
		pct := 0.0
		if total > 0 {
			pct = 100 * float64(v) / float64(total)
		}
		out = append(out, Share{Name: k, Percent: pct})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Percent != out[j].Percent {
			return out[i].Percent > out[j].Percent
		}
		return out[i].Name < out[j].Name
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
