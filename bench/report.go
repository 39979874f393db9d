package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/llmq/llmq/config"
)

// targets compares res with the bars of issue 6.
func targets(res *Results) []Target {
	var out []Target
	if l := res.Latency; l != nil && len(l.Runs) > 0 {
		run := l.Runs[len(l.Runs)-1] // the highest rate
		for _, x := range l.Runs {
			if x.Rate > run.Rate {
				run = x
			}
		}
		ratio := ratio(run.Added.P50Us, run.Echo.Latency.P50Us)
		out = append(out,
			Target{
				Name:     fmt.Sprintf("added latency p50 at %d req/s", run.Rate),
				Bar:      "≤ 2× the raw NATS round trip",
				Measured: fmt.Sprintf("%s added, %.2f× the echo's %s", fmtUs(run.Added.P50Us), ratio, fmtUs(run.Echo.Latency.P50Us)),
				Met:      run.LLMQ.OK > 0 && ratio <= 2,
			},
			Target{
				Name:     fmt.Sprintf("added latency p99 at %d req/s", run.Rate),
				Bar:      "≤ 1 ms",
				Measured: fmtUs(run.Added.P99Us) + " added",
				Met:      run.LLMQ.OK > 0 && run.Added.P99Us <= 1000,
			})
	}
	if t := res.Throughput; t != nil && len(t.Processes.Steps) > 0 {
		c := t.Processes
		r := ratio(c.BestLLMQ, c.BestEcho)
		out = append(out,
			Target{
				Name:     "completions/s through the whole path (instant simulator)",
				Bar:      "≥ 0.5× the raw NATS request-reply rate",
				Measured: fmt.Sprintf("%.0f/s, %.2f× the echo's %.0f/s (separate processes)", c.BestLLMQ, r, c.BestEcho),
				Met:      r >= 0.5,
			},
			Target{
				Name:     "completions/s over TCP",
				Bar:      "≥ 10,000/s",
				Measured: fmt.Sprintf("%.0f/s (separate processes), %.0f/s (one process)", c.BestLLMQ, t.InProcess.BestLLMQ),
				Met:      c.BestLLMQ >= 10000,
			})
	}
	if r := res.Routing; r != nil {
		load := nearestLoad(r.Runs, 0.8)
		oracle, ok := findRun(r.Runs, OracleJSQ, 0, load)
		ect, _ := findRun(r.Runs, OracleECT, 0, load)
		for _, n := range []int{1, 2} {
			lb, found := findRun(r.Runs, config.LeastBusy, n, load)
			if !found || !ok {
				continue
			}
			rr := ratio(lb.Latency.P99Us, oracle.Latency.P99Us)
			out = append(out, Target{
				Name: fmt.Sprintf("least-busy p99 at %.0f%% load, %d dispatcher%s", 100*load, n, plural(n)),
				Bar:  "≤ 1.2× the oracle's (JSQ), no 503s",
				Measured: fmt.Sprintf("%s vs %s: %.2f×; %d 503s, %d failed (the stronger ECT bound: %s, %.2f×)",
					fmtMs(lb.Latency.P99Us), fmtMs(oracle.Latency.P99Us), rr, lb.Busy, lb.Failed, fmtMs(ect.Latency.P99Us), ratio(lb.Latency.P99Us, ect.Latency.P99Us)),
				Met: rr <= 1.2 && lb.Busy == 0 && lb.Failed == 0,
			})
		}
	}
	if h := res.Hosts; h != nil {
		out = append(out, hostsTargets(h)...)
	}
	if m := res.Memory; m != nil {
		worst := -1.0
		var cases []string
		for _, row := range m.Rows {
			if row.Process == "dispatcher" {
				worst = max(worst, row.BytesPerJob)
				cases = append(cases, fmt.Sprintf("%s %s", fmtBytes(row.BytesPerJob), strings.SplitN(row.Case, ":", 2)[0]))
			}
		}
		if worst >= 0 {
			out = append(out, Target{
				Name:     "dispatcher memory per in-flight job",
				Bar:      "≤ 4 KiB",
				Measured: strings.Join(cases, ", "),
				Met:      worst <= 4096,
			})
		}
	}
	if res.Residency != nil {
		out = append(out, residencyTargets(res.Residency)...)
	}
	return out
}

func findRun(runs []RoutingRun, router string, dispatchers int, load float64) (RoutingRun, bool) {
	for _, r := range runs {
		if r.Router == router && r.Dispatchers == dispatchers && r.Load == load {
			return r, true
		}
	}
	return RoutingRun{}, false
}

func nearestLoad(runs []RoutingRun, want float64) float64 {
	best := math.Inf(1)
	for _, r := range runs {
		if math.Abs(r.Load-want) < math.Abs(best-want) {
			best = r.Load
		}
	}
	return best
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.Inf(1)
	}
	return a / b
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func fmtUs(v float64) string {
	if math.Abs(v) >= 1000 {
		return fmt.Sprintf("%.2f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}

func fmtMs(us float64) string { return fmt.Sprintf("%.1f ms", us/1000) }

func fmtBytes(b float64) string {
	switch {
	case math.Abs(b) >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case math.Abs(b) >= 1<<10:
		return fmt.Sprintf("%.2f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

func yes(b bool) string {
	if b {
		return "**yes**"
	}
	return "**no**"
}

func errorsOf(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	total := 0
	for k, v := range m {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// Markdown writes the results as BENCHMARKS.md. notes, when not empty, is
// placed after the targets (the analysis a person wrote of a run).
func (res *Results) Markdown(w io.Writer, notes string) error {
	b := &strings.Builder{}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	e := res.Env
	p("# llmq benchmarks\n\n")
	p("Written by `make bench` (bench/cmd/llmq-bench); every number below comes from one run on the machine described. ")
	p("Everything ran on loopback. Absolute times drift on shared machines, so the bars are ratios to a raw NATS ")
	p("request-reply echo measured in the same run where they can be.\n\n")
	p("| | |\n|---|---|\n")
	p("| machine | %s, %d cores, %d GiB |\n| OS | %s |\n| Go | %s |\n| commit | %s |\n| command | `%s` |\n| date | %s |\n| run time | %.0f s |\n| load average (1, 5, 15 min) | %s at the start, %s at the end |\n\n",
		e.CPU, e.Cores, e.MemoryGiB, e.OS, e.Go, e.Commit, e.Command, e.Date, res.Seconds, e.LoadStart, e.LoadEnd)
	if len(res.Targets) > 0 {
		p("## Targets (issues 6 and 13)\n\n| target | bar | measured | met |\n|---|---|---|---|\n")
		for _, t := range res.Targets {
			p("| %s | %s | %s | %s |\n", t.Name, t.Bar, t.Measured, yes(t.Met))
		}
		p("\n")
	}
	if notes = strings.TrimSpace(notes); notes != "" {
		p("%s\n\n", notes)
	}
	if l := res.Latency; l != nil {
		p("## 1. Added latency\n\n")
		p("The same chat completion (one user message, `max_tokens` 16, msgpack on NATS) at fixed open-loop rates: ")
		p("**direct** is llmq's own OpenAI adapter calling the fake server from the load generator (no NATS); ")
		p("**llmq** sends it as a job: producer → NATS → dispatcher → worker → the same fake server → the producer's inbox; ")
		p("**echo** is a raw NATS request-reply to one queue subscriber that answers at once, with the job's bytes. ")
		p("Topology: %s. Calls start on schedule whether or not earlier ones answered; latency runs from a call's start to its answer; ", l.Topology)
		p("*lag* is how late calls started against the schedule (the runtime's timers are ~1 ms coarse, so calls leave in small bursts).\n\n")
		p("| rate/s | path | sent | errors | p50 | p99 | p99.9 | max | lag p99 |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, run := range l.Runs {
			for _, x := range []struct {
				name string
				r    LoadResult
			}{{"echo", run.Echo}, {"direct", run.Direct}, {"llmq", run.LLMQ}} {
				p("| %d | %s | %d | %s | %s | %s | %s | %s | %s |\n", run.Rate, x.name, x.r.Sent, errorsOf(x.r.Errors),
					fmtUs(x.r.Latency.P50Us), fmtUs(x.r.Latency.P99Us), fmtUs(x.r.Latency.P999Us), fmtUs(x.r.Latency.MaxUs), fmtUs(x.r.Lag.P99Us))
			}
		}
		for _, run := range l.Runs {
			for _, x := range []struct {
				name string
				r    LoadResult
			}{{"echo", run.Echo}, {"direct", run.Direct}, {"llmq", run.LLMQ}} {
				if x.r.Lag.P99Us > 5000 {
					p("\n**Saturated:** at %d/s the load generator itself started %s calls up to %s late (p99): the two cores had no time to spare, so that run measures queueing on a full machine more than llmq's path.\n",
						run.Rate, x.name, fmtUs(x.r.Lag.P99Us))
				}
			}
		}
		p("\nCPU time per call by process (µs, from /proc; 10 ms ticks), and how busy the machine was. *other* is CPU taken by processes outside the run — anything above a few percent means the numbers above were measured on a shared, busy machine.\n\n")
		procs := []string{"load generator", "nats", "llmq dispatcher", "llmq worker", "openai", "echo"}
		p("| rate/s | path |")
		for _, name := range procs {
			p(" %s |", name)
		}
		p(" total | machine busy | other |\n|---|---|")
		for range procs {
			p("---|")
		}
		p("---|---|---|\n")
		for _, run := range l.Runs {
			for _, x := range []struct {
				name string
				u    CPUUse
			}{{"echo", run.EchoCPU}, {"direct", run.DirectCPU}, {"llmq", run.LLMQCPU}} {
				p("| %d | %s |", run.Rate, x.name)
				total := 0.0
				for _, name := range procs {
					v := x.u.PerCallUs[name]
					total += v
					p(" %.0f |", v)
				}
				p(" %.0f | %.0f%% | %.0f%% |\n", total, x.u.BusyPercent, x.u.OtherPercent)
			}
		}
		p("\nAdded by llmq (llmq − direct, per percentile):\n\n| rate/s | p50 | p99 | p99.9 | echo p50 | added p50 ÷ echo p50 |\n|---|---|---|---|---|---|\n")
		for _, run := range l.Runs {
			p("| %d | %s | %s | %s | %s | %.2f× |\n", run.Rate, fmtUs(run.Added.P50Us), fmtUs(run.Added.P99Us), fmtUs(run.Added.P999Us),
				fmtUs(run.Echo.Latency.P50Us), ratio(run.Added.P50Us, run.Echo.Latency.P50Us))
		}
		p("\n")
	}
	if t := res.Throughput; t != nil {
		p("## 2. Throughput ceiling\n\n")
		p("Closed loop: each of *concurrency* producers sends its next request as soon as the last one is answered, ")
		p("for echo and for llmq jobs to an instant simulated provider (`sim`, 16 tokens, no delay); levels rise until llmq stops gaining.\n\n")
		for _, c := range []Ceiling{t.Processes, t.InProcess} {
			if len(c.Steps) == 0 {
				continue
			}
			p("%s.\n\n| concurrency | echo/s | llmq/s | llmq ÷ echo | llmq p50 | llmq p99 | llmq errors |\n|---|---|---|---|---|---|---|\n", capitalize(c.Topology))
			for _, s := range c.Steps {
				p("| %d | %.0f | %.0f | %.2f | %s | %s | %s |\n", s.Concurrency, s.Echo.Rate, s.LLMQ.Rate, ratio(s.LLMQ.Rate, s.Echo.Rate),
					fmtUs(s.LLMQ.Latency.P50Us), fmtUs(s.LLMQ.Latency.P99Us), errorsOf(s.LLMQ.Errors))
			}
			p("\n")
		}
		if pr := t.Profile; pr != nil {
			p("Where the time goes: a CPU profile of the one-process topology at concurrency %d (%.0f completions/s while profiled; %.1f s of CPU in %.1f s, so %.2f of the %d cores). ",
				t.ProfileLevel, t.ProfileRate, pr.CPUSeconds, pr.Seconds, pr.CPUSeconds/math.Max(pr.Seconds, 1e-9), e.Cores)
			p("A sample counts for the component of the frame nearest its leaf (allocation and syscalls a component makes are its own).\n\n")
			p("| component | share of CPU |\n|---|---|\n")
			for _, s := range pr.Components {
				p("| %s | %.1f%% |\n", s.Name, s.Percent)
			}
			p("\n| function (flat) | share |\n|---|---|\n")
			for _, s := range pr.Top {
				p("| `%s` | %.1f%% |\n", s.Name, s.Percent)
			}
			p("\n")
		} else if t.ProfileMissing != "" {
			p("No profile: %s\n\n", t.ProfileMissing)
		}
	}
	if r := res.Routing; r != nil {
		p("## 3. Routing quality\n\n")
		p("A fleet of simulated Ollama hosts (real HTTP, `/api/chat`; a chat holds a slot for TTFT + tokens ÷ speed, waits in a FIFO queue when the slots are busy, ")
		p("and is answered 503 \"server busy\" when the queue is full), one llmq worker per host with concurrency = the host's slots, and one or two dispatchers, ")
		p("all in one process on loopback TCP. Jobs arrive as a Poisson process (the same jobs for every router at a load); output lengths are exponential ")
		p("(mean %.1f tokens, at most 4× that); %.0f s per run; `num_retries: 2`. Fleet capacity at that mean: %.0f jobs/s.\n\n", r.MeanTokens, r.Seconds, r.Capacity)
		p("| host | slots | queue limit | TTFT | tokens/s | jobs/s at capacity |\n|---|---|---|---|---|---|\n")
		for _, h := range r.Hosts {
			p("| %s | %d | %d | %s | %.0f | %.0f |\n", h.Name, h.Parallel, h.MaxQueue, h.TTFT, h.TokensPerSecond, h.Capacity(r.MeanTokens))
		}
		p("\n**Oracles** run the same jobs in a simulation with perfect, instant knowledge, binding each job to a host as it arrives: ")
		p("*JSQ* joins the host with the fewest jobs per slot (faster host on a tie); *ECT* joins the host where the job would finish first, ")
		p("knowing every job's length (JSQ measured in time — a stronger bound). Both add the hosts' measured mean timer overshoot (*late*) to each job, ")
		p("so they run on the same clock as the real hosts. A job no host could queue counts as a 503. ")
		p("*slots busy* is the share of the fleet's slot time chats held during the run; *host late* the mean time a chat took beyond its nominal time. ")
		p("Shares are of completed jobs, by host.\n\n")
		loads := []float64{}
		for _, run := range r.Runs {
			if !slices.Contains(loads, run.Load) {
				loads = append(loads, run.Load)
			}
		}
		for _, load := range loads {
			p("### %.0f%% of capacity (%.0f jobs/s offered)\n\n", 100*load, load*r.Capacity)
			p("| router | dispatchers | p50 | p99 | p99 ÷ JSQ | completed | failed | 503s | retries | slots busy | host late |")
			for _, h := range r.Hosts {
				p(" %s |", h.Name)
			}
			p("\n|---|---|---|---|---|---|---|---|---|---|---|")
			for range r.Hosts {
				p("---|")
			}
			p("\n")
			oracle, _ := findRun(r.Runs, OracleJSQ, 0, load)
			for _, run := range r.Runs {
				if run.Load != load {
					continue
				}
				disp := fmt.Sprint(run.Dispatchers)
				if run.Dispatchers == 0 {
					disp = "—"
				}
				util := "—"
				if run.Dispatchers > 0 {
					util = fmt.Sprintf("%.0f%%", 100*run.Utilization)
				}
				p("| %s | %s | %s | %s | %.2f | %d | %s | %d | %d | %s | %s |", run.Router, disp, fmtMs(run.Latency.P50Us), fmtMs(run.Latency.P99Us),
					ratio(run.Latency.P99Us, oracle.Latency.P99Us), run.OK, errorsOf(run.Errors), run.Busy, run.Retries, util, fmtUs(run.LateUs))
				for _, h := range r.Hosts {
					p(" %.0f%% |", 100*run.Share[h.Name])
				}
				p("\n")
			}
			p("\n")
		}
	}
	if m := res.Memory; m != nil {
		p("## 4. Memory\n\n")
		p("RSS of the llmq processes (separate processes, as in production) idle after a warm-up, and with %d jobs in flight: ", m.InFlight)
		p("*forwarded* — the worker (openai adapter, concurrency %d) holds every job in an HTTP call the fake server keeps open, the dispatcher tracks each; ", m.InFlight)
		p("*queued* — the worker has one slot, so the jobs wait in the dispatcher's queue. Bytes per job = (loaded − idle) ÷ jobs; ")
		p("Go's RSS includes the garbage collector's headroom (GOGC=100), so this is what the process really takes, not only live data.\n\n")
		p("| process | case | jobs | idle | loaded | per job | answered after release |\n|---|---|---|---|---|---|---|\n")
		for _, row := range m.Rows {
			p("| %s | %s | %d | %s | %s | %s | %d |\n", row.Process, row.Case, row.Jobs, fmtBytes(float64(row.IdleBytes)),
				fmtBytes(float64(row.LoadedBytes)), fmtBytes(row.BytesPerJob), row.Completed)
		}
		p("\n")
	}
	if g := res.Gateway; g != nil {
		gatewayMarkdown(p, g, e.Cores)
	}
	if h := res.Hosts; h != nil {
		hostsMarkdown(b, h)
	}
	if rr := res.Residency; rr != nil {
		rr.markdown(p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
