package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// gatewayHeading starts the gateway section of BENCHMARKS.md.
const gatewayHeading = "## 5. Gateway: cost per HTTP request"

// gatewayMarkdown writes the gateway section.
func gatewayMarkdown(p func(string, ...any), g *GatewayResults, cores int) {
	p("%s\n\n", gatewayHeading)
	p("Run alone with `make bench-gateway` (commit %s, %s; `%s`). ", g.Commit, g.Date, g.Command)
	p("One chat completion (`max_tokens` 16) over HTTP/1.1 with keep-alive to a mock OpenAI upstream that answers at once with a fixed body: ")
	p("**direct** to the mock; **proxy** through a bare `httputil.ReverseProxy` (idle pool of 1024 per host); ")
	p("**llmq up** through `llmq up --gateway` with an `openai/` deployment pointing at the mock; **llmq processes** through the same path as four processes. ")
	p("Topology: %s. The paths take turns in %d slices per phase. ", g.Topology, g.Rounds)
	p("*hop CPU* is the CPU time of the hop's own processes per request (from /proc, 10 ms ticks); the mock's and the load generator's are shown apart.\n\n")
	if len(g.Targets) > 0 {
		p("| target (issue 14) | bar | measured | met |\n|---|---|---|---|\n")
		for _, t := range g.Targets {
			p("| %s | %s | %s | %s |\n", t.Name, t.Bar, t.Measured, yes(t.Met))
		}
		p("\n")
	}
	var proxy GatewayPath
	for _, x := range g.Paths {
		if x.Name == PathProxy {
			proxy = x
		}
	}
	p("Peak, closed loop at %d clients:\n\n", g.Clients)
	p("| path | req/s | ÷ proxy | hop CPU µs/req | ÷ proxy | mock µs/req | load generator µs/req | p50 | p99 | errors | machine busy | other |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range g.Paths {
		hop, hopRatio := "—", "—"
		if len(x.Processes) > 0 {
			hop = fmt.Sprintf("%.0f", x.HopCPUUs)
			hopRatio = fmt.Sprintf("%.2f", ratio(x.HopCPUUs, proxy.HopCPUUs))
		}
		p("| %s | %.0f | %.2f | %s | %s | %.0f | %.0f | %s | %s | %s | %.0f%% | %.0f%% |\n", x.Name, x.Peak.Rate, ratio(x.Peak.Rate, proxy.Peak.Rate),
			hop, hopRatio, x.PeakCPU.PerCallUs["openai"], x.PeakCPU.PerCallUs["load generator"],
			fmtUs(x.Peak.Latency.P50Us), fmtUs(x.Peak.Latency.P99Us), errorsOf(x.Peak.Errors), x.PeakCPU.BusyPercent, x.PeakCPU.OtherPercent)
	}
	p("\nHop CPU by process at the peak (µs per request):\n\n| path | process | µs/req |\n|---|---|---|\n")
	for _, x := range g.Paths {
		for _, name := range x.Processes {
			p("| %s | %s | %.0f |\n", x.Name, name, x.PeakCPU.PerCallUs[name])
		}
	}
	p("\nLatency at one client (closed loop) and at a fixed %d req/s (open loop); *added* is the path minus direct. ", g.Rate)
	p("One NATS round trip (raw request-reply echo, one client, in its own process): p50 %s, p99 %s.\n\n", fmtUs(g.Echo.Latency.P50Us), fmtUs(g.Echo.Latency.P99Us))
	p("| path | 1 client: p50 | p99 | added p50 | added p99 | %d/s: p50 | p99 | added p50 | added p99 | lag p99 | errors |\n", g.Rate)
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range g.Paths {
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", x.Name,
			fmtUs(x.One.Latency.P50Us), fmtUs(x.One.Latency.P99Us), fmtUs(x.AddedOne.P50Us), fmtUs(x.AddedOne.P99Us),
			fmtUs(x.Fixed.Latency.P50Us), fmtUs(x.Fixed.Latency.P99Us), fmtUs(x.AddedFixed.P50Us), fmtUs(x.AddedFixed.P99Us),
			fmtUs(x.Fixed.Lag.P99Us), errorsOf(mergeErrors(x.One.Errors, x.Fixed.Errors)))
	}
	p("\n")
	if pr := g.Profile; pr != nil {
		p("CPU profile of llmq up --gateway at %d clients: the same packages assembled as `llmq up` does (embedded NATS, one in-process connection, dispatcher, worker, gateway) in a helper process, ", g.Clients)
		p("which serves a profiler the llmq binary has not; %.0f req/s while profiled, %.1f s of CPU in %.1f s (%.2f of the %d cores). ",
			g.ProfileRate, pr.CPUSeconds, pr.Seconds, pr.CPUSeconds/math.Max(pr.Seconds, 1e-9), cores)
		p("A sample counts for the component of the frame nearest its leaf.\n\n")
		p("| component | share of CPU |\n|---|---|\n")
		for _, s := range pr.Components {
			p("| %s | %.1f%% |\n", s.Name, s.Percent)
		}
		p("\n| function (flat) | share | | function (cum) | share |\n|---|---|---|---|---|\n")
		for i := range max(len(pr.Top), len(pr.TopCum)) {
			cell := func(s []Share) string {
				if i >= len(s) {
					return " | "
				}
				return fmt.Sprintf("`%s` | %.1f%%", s[i].Name, s[i].Percent)
			}
			p("| %s | | %s |\n", cell(pr.Top), cell(pr.TopCum))
		}
		p("\n")
	} else if g.ProfileMissing != "" {
		p("No profile: %s\n\n", g.ProfileMissing)
	}
}

func mergeErrors(a, b map[string]int) map[string]int {
	m := map[string]int{}
	for k, v := range a {
		m[k] += v
	}
	for k, v := range b {
		m[k] += v
	}
	return m
}

// MergeMarkdown returns old with the level-two sections ("## …" to the
// next "## ") of fresh put in: a section of fresh whose heading old has
// replaces it; a new numbered section ("## 5. …") goes at the end, any
// other new one before old's first numbered section. Text before fresh's
// first section (the run's header) and its "## Targets" section are left
// out, so that a run of some sections updates a file a full run wrote
// and keeps the other sections' figures.
func MergeMarkdown(old, fresh string) string {
	oldHead, oldSecs := splitSections(old)
	_, freshSecs := splitSections(fresh)
	for _, s := range freshSecs {
		if strings.HasPrefix(s.heading, "## Targets") {
			continue
		}
		i := slices.IndexFunc(oldSecs, func(o section) bool { return o.heading == s.heading })
		switch {
		case i >= 0:
			oldSecs[i] = s
		case numbered(s.heading):
			oldSecs = append(oldSecs, s)
		default:
			j := slices.IndexFunc(oldSecs, func(o section) bool { return numbered(o.heading) })
			if j < 0 {
				j = len(oldSecs)
			}
			oldSecs = slices.Insert(oldSecs, j, s)
		}
	}
	b := &strings.Builder{}
	b.WriteString(oldHead)
	for _, s := range oldSecs {
		b.WriteString(ensureBlankLine(s.text))
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

type section struct{ heading, text string }

// splitSections cuts md at its "## " lines (outside code fences).
func splitSections(md string) (head string, secs []section) {
	lines := strings.SplitAfter(md, "\n")
	cur := &strings.Builder{}
	heading := ""
	fence := false
	flush := func() {
		if heading == "" {
			head = cur.String()
		} else {
			secs = append(secs, section{heading, cur.String()})
		}
		cur.Reset()
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "```") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(l, "## ") {
			flush()
			heading = strings.TrimSpace(l)
		}
		cur.WriteString(l)
	}
	flush()
	return head, secs
}

// numbered reports whether a heading is a numbered section ("## 5. …").
func numbered(h string) bool {
	rest := strings.TrimPrefix(h, "## ")
	i := strings.IndexByte(rest, '.')
	if i <= 0 {
		return false
	}
	for _, c := range rest[:i] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func ensureBlankLine(s string) string {
	return strings.TrimRight(s, "\n") + "\n\n"
}
