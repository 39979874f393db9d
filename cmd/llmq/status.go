package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
)

func (a *app) statusCmd() *cobra.Command {
	var (
		asJSON, watch bool
		wait          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the workers of the fleet, from their heartbeats",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			nc, err := a.connect(ctx, "llmq-status")
			if err != nil {
				return err
			}
			defer nc.Close()
			s := a.subjects(nil)
			queued := make(chan map[string]int, 1)
			go func() { queued <- dispatcherQueues(ctx, nc, s, wait) }()
			fleet, err := collect(ctx, nc, s, wait)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(fleet.list())
			}
			if !watch {
				list := fleet.list()
				printFleet(out, list)
				printDemand(out, list, <-queued)
				fleet.printDropped(cmd.ErrOrStderr())
				return nil
			}
			t := time.NewTicker(wait)
			defer t.Stop()
			for {
				fmt.Fprint(out, "\033[H\033[2J")
				fmt.Fprintf(out, "llmq status — %s (every %s, Ctrl-C to stop)\n\n", time.Now().Format(time.TimeOnly), wait)
				printFleet(out, fleet.list())
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
			}
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the heartbeats as JSON")
	f.BoolVar(&watch, "watch", false, "refresh the table until interrupted")
	f.DurationVar(&wait, "wait", 1500*time.Millisecond, "how long to listen for heartbeats (workers are also asked to beat at once)")
	return cmd
}

// maxFleetWorkers bounds the workers status and top follow: heartbeats
// come from any client of the NATS server, and a flood of made-up workers
// must not grow the view without bound.
const maxFleetWorkers = 4096

// fleetView is the latest heartbeat of each worker, forgetting workers
// silent for three intervals.
type fleetView struct {
	mu      sync.Mutex
	workers map[string]seenBeat
	// dropped counts the heartbeats refused: malformed (see
	// broker.DecodeHeartbeat) or over maxFleetWorkers.
	dropped atomic.Uint64
}

type seenBeat struct {
	hb   schema.Heartbeat
	seen time.Time
}

// collect listens to heartbeats for wait (after asking workers to beat)
// and keeps listening in the background until ctx ends.
func collect(ctx context.Context, nc *nats.Conn, s broker.Subjects, wait time.Duration) (*fleetView, error) {
	f := &fleetView{workers: map[string]seenBeat{}}
	sub, err := nc.Subscribe(s.HeartbeatWildcard(), func(m *nats.Msg) {
		hb, ok := decodeBeat(s, m)
		if !ok {
			f.dropped.Add(1)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if hb.State == schema.StateStopped {
			delete(f.workers, hb.Worker)
			return
		}
		prev, ok := f.workers[hb.Worker]
		if ok && prev.hb.Seq >= hb.Seq {
			return
		}
		if !ok && len(f.workers) >= maxFleetWorkers {
			f.dropped.Add(1)
			return
		}
		f.workers[hb.Worker] = seenBeat{hb, time.Now()}
	})
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	if err := nc.Publish(s.Announce(), nil); err != nil {
		return nil, err
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
	return f, nil
}

// decodeBeat decodes a heartbeat with broker.DecodeHeartbeat (guarded,
// shape-checked, clamped) and drops what status and top do not show: the
// per-dispatcher job lists a beat may carry by the thousand.
func decodeBeat(s broker.Subjects, m *nats.Msg) (schema.Heartbeat, bool) {
	hb, err := s.DecodeHeartbeat(m.Subject, m.Data, time.Now())
	if err != nil {
		return hb, false
	}
	hb.Jobs, hb.Received = nil, nil
	return hb, true
}

func (f *fleetView) list() []schema.Heartbeat {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	out := make([]schema.Heartbeat, 0, len(f.workers))
	for id, b := range f.workers {
		if now.Sub(b.seen) > 3*time.Duration(max(b.hb.IntervalMs, 1))*time.Millisecond {
			delete(f.workers, id)
			continue
		}
		out = append(out, b.hb)
	}
	slices.SortFunc(out, func(a, b schema.Heartbeat) int {
		return cmp.Or(strings.Compare(a.Tier, b.Tier), strings.Compare(a.Worker, b.Worker))
	})
	return out
}

// printDropped says how many heartbeats were refused, if any.
func (f *fleetView) printDropped(w io.Writer) {
	if n := f.dropped.Load(); n > 0 {
		fmt.Fprintf(w, "%d heartbeats refused (malformed, or over %d workers)\n", n, maxFleetWorkers)
	}
}

func printFleet(w io.Writer, list []schema.Heartbeat) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no workers (none beat within the wait; is NATS right and a worker running?)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIER\tWORKER\tDEPLOYMENT\tPROVIDER\tMODEL\tHOST\tRESIDENCY\tSTATE\tIN-FLIGHT\tP50 MS\tMS/TOKEN\tDONE\tFAILED\tCOOLING")
	now := time.Now()
	for _, hb := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%.1f\t%.2f\t%d\t%d\t%s\n",
			hb.Tier, hb.Worker, hb.Deployment, hb.Provider, hb.Model, cmp.Or(hb.Host, "-"), residencyText(hb), hb.State,
			hb.InFlight, hb.Capacity, hb.LatencyMs, hb.MsPerToken, hb.Completed, hb.Failed, coolingText(hb, now))
	}
	tw.Flush()
}

// dispatcherQueues asks the dispatchers' micro services for their queues
// and sums them per tier (none when no dispatcher answers within wait).
func dispatcherQueues(ctx context.Context, nc *nats.Conn, s broker.Subjects, wait time.Duration) map[string]int {
	out := map[string]int{}
	for _, st := range microStats(ctx, nc, dispatcher.ServiceName, s.Name(), wait) {
		var sum dispatcher.ServiceSummary
		if len(st.Endpoints) > 0 && json.Unmarshal(st.Endpoints[0].Data, &sum) == nil {
			for t, n := range sum.Queued {
				out[t] += n
			}
		}
	}
	return out
}
