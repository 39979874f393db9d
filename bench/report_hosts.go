package bench

import (
	"fmt"
	"strings"

	"github.com/llmq/llmq/config"
)

// hostsTargets compares the hosts section with the bars of issue 13.
func hostsTargets(h *HostsResults) []Target {
	var out []Target
	s := h.Speed
	for _, producers := range speedProducers(s.Runs) {
		best, ok := bestStatic(s.Runs, producers)
		if !ok {
			continue
		}
		for _, run := range s.Runs {
			if run.Static || run.Producers != producers || run.Router != config.ShortestExpectedDelay {
				continue
			}
			r := ratio(run.Load.Latency.P99Us, best.Load.Latency.P99Us)
			bar := "≤ 1.2× the best static split's"
			if strings.HasPrefix(best.Router, "oracle") {
				bar = "≤ 1.2× the oracle's (all on A and B)"
			}
			out = append(out, Target{
				Name: fmt.Sprintf("shortest-expected-delay p99, A/B/C/D fleet, %d producers, %d dispatcher%s", producers, run.Dispatchers, plural(run.Dispatchers)),
				Bar:  bar,
				Measured: fmt.Sprintf("%s vs %s (%s): %.2f×; %d failed", fmtMs(run.Load.Latency.P99Us), fmtMs(best.Load.Latency.P99Us), best.Router, r,
					run.Load.Failed),
				Met: r <= 1.2 && run.Load.Failed == 0 && run.Load.OK > 0,
			})
		}
	}
	a := h.Affinity
	with, ok1 := findAffinity(a.Runs, config.ShortestExpectedDelay, true, 1, true)
	without, ok2 := findAffinity(a.Runs, config.ShortestExpectedDelay, false, 1, true)
	offWith, ok3 := findAffinity(a.Runs, config.ShortestExpectedDelay, true, 1, false)
	offWithout, ok4 := findAffinity(a.Runs, config.ShortestExpectedDelay, false, 1, false)
	if ok1 && ok2 && ok3 && ok4 {
		cacheGain := ratio(with.Load.Rate, without.Load.Rate)
		noCache := ratio(offWith.Load.Rate, offWithout.Load.Rate)
		out = append(out, Target{
			Name: "conversation affinity (shortest-expected-delay, 1 dispatcher)",
			Bar:  "prompt-cache hit rate ≥ 95% of the achievable; no loss of throughput (≥ 0.95× without affinity: runs vary by ±10% here)",
			Measured: fmt.Sprintf("%.1f%% of the turns that had earlier turns hit (all could); %.0f vs %.0f turns/s without affinity (%.2f×); hosts with no cache (nothing to gain): %.0f vs %.0f (%.2f×)",
				100*with.HitRate, with.Load.Rate, without.Load.Rate, cacheGain, offWith.Load.Rate, offWithout.Load.Rate, noCache),
			Met: with.HitRate >= 0.95 && cacheGain >= 0.95 && with.Load.Failed == 0,
		})
	}
	return out
}

func speedProducers(runs []SpeedRun) []int {
	var out []int
	for _, r := range runs {
		if !containsInt(out, r.Producers) {
			out = append(out, r.Producers)
		}
	}
	return out
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// bestStatic is the static split with the lowest p99 at producers.
func bestStatic(runs []SpeedRun, producers int) (SpeedRun, bool) {
	var best SpeedRun
	found := false
	for _, r := range runs {
		if r.Static && r.Producers == producers && r.Load.Failed == 0 && r.Load.OK > 0 && (!found || r.Load.Latency.P99Us < best.Load.Latency.P99Us) {
			best, found = r, true
		}
	}
	return best, found
}

func findAffinity(runs []AffinityRun, strategy string, affinity bool, dispatchers int, cache bool) (AffinityRun, bool) {
	for _, r := range runs {
		if r.Router == strategy && r.Affinity == affinity && r.Dispatchers == dispatchers && r.Cache == cache {
			return r, true
		}
	}
	return AffinityRun{}, false
}

// hostsMarkdown writes the hosts section.
func hostsMarkdown(b *strings.Builder, h *HostsResults) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	s := h.Speed
	p("## 6. GPU hosts: speed-aware load and conversation affinity (issue 13)\n\n")
	p("**Hosts of different speed.** Simulated Ollama hosts (real HTTP, as in §3), one llmq worker per host with concurrency = its slots, ")
	p("one or two dispatchers, all in one process on loopback TCP. *Producers* send closed-loop: each sends its next job (%d tokens) when the last is answered. ", s.Tokens)
	p("Each run measures %g s after %g s of the same load (so routers know the hosts' latencies). ", s.Seconds, s.WarmUp)
	p("*Static* rows partition the fleet by hand: each group of hosts is its own tier, and a fixed number of the producers use only it (least-busy within a group); ")
	p("the *oracle* at 8 producers puts everything on A and B, which have a slot for each producer.\n\n")
	p("| host | slots | time a job |\n|---|---|---|\n")
	for _, hs := range s.Hosts {
		p("| %s | %d | %s |\n", hs.Name, hs.Parallel, hs.Service(s.Tokens))
	}
	for _, producers := range speedProducers(s.Runs) {
		best, ok := bestStatic(s.Runs, producers)
		p("\n### %d producers\n\n| router | dispatchers | jobs/s | p50 | p99 | p99 ÷ best static | failed |", producers)
		for _, hs := range s.Hosts {
			p(" %s |", hs.Name)
		}
		p("\n|---|---|---|---|---|---|---|")
		for range s.Hosts {
			p("---|")
		}
		p("\n")
		for _, run := range s.Runs {
			if run.Producers != producers {
				continue
			}
			rel := "—"
			if ok {
				rel = fmt.Sprintf("%.2f", ratio(run.Load.Latency.P99Us, best.Load.Latency.P99Us))
			}
			p("| %s | %d | %.1f | %s | %s | %s | %s |", run.Router, run.Dispatchers, run.Load.Rate, fmtMs(run.Load.Latency.P50Us), fmtMs(run.Load.Latency.P99Us),
				rel, errorsOf(run.Load.Errors))
			for _, hs := range s.Hosts {
				p(" %.0f%% |", 100*run.Share[hs.Name])
			}
			p("\n")
		}
	}
	a := h.Affinity
	p("\n**Conversation affinity.** %d equal hosts", len(a.Hosts))
	if len(a.Hosts) > 0 {
		c := a.Hosts[0]
		p(" of %d slots with a prompt cache: a turn's first token takes %s plus %s for each message of its prompt the host has not processed before ", c.Parallel, c.Base, c.Prefill)
		p("(it remembers each served chat's messages and reply, %d entries, least recently used out), then 16 tokens at %.0f tokens/s. ", c.Entries, c.TokensPerSecond)
	}
	p("%d producers each hold a conversation of %d turns (a system prompt, then user and assistant messages), then start the next; each turn is sent when the last is answered. ", a.Producers, a.Turns)
	p("A *hit* is a turn whose earlier messages the serving host had all cached; every turn after a conversation's first could be one, so the hit rate is hits ÷ those turns. ")
	p("*No cache* runs the same hosts with the cache off, to show what affinity costs in balance alone. Each run measures %g s after %g s.\n\n", a.Seconds, a.WarmUp)
	p("| router | affinity | dispatchers | cache | turns/s | p50 | p99 | hit rate | partial | failed |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, run := range a.Runs {
		cache := "on"
		if !run.Cache {
			cache = "no cache"
		}
		later := run.Stats.Turns - run.Stats.First
		partial := 0.0
		if later > 0 {
			partial = float64(run.Stats.Partial) / float64(later)
		}
		p("| %s | %s | %d | %s | %.1f | %s | %s | %.1f%% | %.1f%% | %s |\n", run.Router, onOff(run.Affinity), run.Dispatchers, cache, run.Load.Rate,
			fmtMs(run.Load.Latency.P50Us), fmtMs(run.Load.Latency.P99Us), 100*run.HitRate, 100*partial, errorsOf(run.Load.Errors))
	}
	p("\n")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
