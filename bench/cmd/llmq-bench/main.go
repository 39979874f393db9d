// Command llmq-bench measures llmq on this machine and writes
// BENCHMARKS.md: the latency llmq adds, the throughput ceiling, routing
// quality against an oracle, and memory per job in flight. `make bench`
// runs it with the llmq binary it has just built:
//
//	llmq-bench --llmq bin/llmq --out BENCHMARKS.md
//
// It is a separate command, not `llmq bench`, so that the load generator,
// fake providers, simulated hosts and profile reader stay out of the
// binary that ships, and so that it drives llmq the way production does:
// as separate processes started from the binary under test.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/bench"
)

func main() {
	if bench.HelperMain() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := command().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "llmq-bench:", err)
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var (
		o                   bench.Options
		out, jsonOut, notes string
		fromJSON            string
		quick, update       bool
	)
	cmd := &cobra.Command{
		Use:           "llmq-bench",
		Short:         "Measure llmq on this machine and write BENCHMARKS.md",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quick {
				q := bench.Quick()
				q.LLMQ, q.Sections, q.Command = o.LLMQ, o.Sections, o.Command
				o = q
			}
			o.Command = "llmq-bench " + strings.Join(os.Args[1:], " ")
			o.Log = cmd.ErrOrStderr()
			var noteText string
			if notes != "" {
				b, err := os.ReadFile(notes)
				if err != nil {
					return err
				}
				noteText = string(b)
			}
			if fromJSON != "" { // render a saved run again (new notes), measure nothing
				b, err := os.ReadFile(fromJSON)
				if err != nil {
					return err
				}
				var res bench.Results
				if err := json.Unmarshal(b, &res); err != nil {
					return fmt.Errorf("--from-json: %w", err)
				}
				return write(&res, out, "", noteText, update)
			}
			res, err := bench.Run(cmd.Context(), o)
			if res != nil {
				if werr := write(res, out, jsonOut, noteText, update); werr != nil && err == nil {
					err = werr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.LLMQ, "llmq", "bin/llmq", "llmq binary to run as separate processes")
	f.StringSliceVar(&o.Sections, "sections", nil, "sections to run: latency, throughput, routing, memory, gateway, hosts, residency (default all)")
	f.IntSliceVar(&o.Rates, "rates", nil, "offered loads of the latency section, req/s (default 1000,5000)")
	f.DurationVar(&o.RateDuration, "rate-duration", 0, "how long each path runs at each rate (default 8s)")
	f.IntSliceVar(&o.Concurrency, "concurrency", nil, "throughput levels (default 1,4,16,64,256,1024)")
	f.DurationVar(&o.StepDuration, "step-duration", 0, "how long each throughput level runs (default 2s)")
	f.Float64SliceVar(&o.Loads, "loads", nil, "routing loads as shares of capacity (default 0.5,0.8,0.95)")
	f.StringSliceVar(&o.Strategies, "strategies", nil, "routing strategies to compare (default all)")
	f.DurationVar(&o.RoutingDuration, "routing-duration", 0, "how long each routing run offers load (default 6s)")
	f.DurationVar(&o.HostsDuration, "hosts-duration", 0, "how long each run of the hosts section measures (default 6s)")
	f.StringSliceVar(&o.HostsParts, "hosts-parts", nil, "parts of the hosts section: speed, affinity, or strategies (speed without the static splits) (default speed,affinity)")
	f.StringSliceVar(&o.HostsStrategies, "hosts-strategies", nil, "strategies the hosts section's speed part compares (default all four)")
	f.IntSliceVar(&o.HostsProducers, "hosts-producers", nil, "closed-loop producers of the hosts section's speed part (default 8,16)")
	f.IntSliceVar(&o.Dispatchers, "dispatchers", nil, "dispatcher counts of the routing and hosts sections (default 1,2)")
	f.DurationVar(&o.ResidencyDuration, "residency-duration", 0, "how long each layout of the residency section runs (default 20s)")
	f.IntVar(&o.InFlight, "in-flight", 0, "jobs in flight in the memory section (default and most: 4096, the most slots a worker may have)")
	f.IntVar(&o.GatewayClients, "gateway-clients", 0, "closed-loop clients of the gateway section's peak (default 64)")
	f.IntVar(&o.GatewayRate, "gateway-rate", 0, "fixed rate of the gateway section, req/s (default 1000)")
	f.DurationVar(&o.GatewayDuration, "gateway-duration", 0, "how long each gateway path runs in each phase (default 8s)")
	f.StringVar(&o.GatewayProfile, "gateway-profile", "", "write the gateway section's raw CPU profile here (go tool pprof)")
	f.DurationVar(&o.ProfileDuration, "profile-duration", 0, "how long CPU profiles run (default 4s)")
	f.Uint64Var(&o.Seed, "seed", 0, "seed of workloads and routing choices (default 1)")
	f.BoolVar(&quick, "quick", false, "smoke-sized numbers: every section in seconds (not for BENCHMARKS.md)")
	f.StringVar(&out, "out", "BENCHMARKS.md", "Markdown report to write (- for stdout)")
	f.StringVar(&jsonOut, "json", "", "also write the raw results as JSON here")
	f.StringVar(&notes, "notes", "", "Markdown file of analysis to place after the targets")
	f.StringVar(&fromJSON, "from-json", "", "write the report of a run saved with --json instead of running (to update notes)")
	f.BoolVar(&update, "update", false, "merge the sections run into the existing --out file, keeping its other sections (see bench.MergeMarkdown)")
	return cmd
}

func write(res *bench.Results, out, jsonOut, notes string, update bool) error {
	if jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	var md strings.Builder
	if err := res.Markdown(&md, notes); err != nil {
		return err
	}
	text := md.String()
	if out == "-" {
		_, err := os.Stdout.WriteString(text)
		return err
	}
	if update {
		old, err := os.ReadFile(out)
		if err != nil {
			return fmt.Errorf("--update: %w", err)
		}
		text = bench.MergeMarkdown(string(old), text)
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "llmq-bench: wrote %s at %s\n", out, time.Now().Format(time.TimeOnly))
	return os.Rename(tmp, out)
}
