package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// `llmq top` redraws a plain-text frame in place with three ANSI sequences
// (cursor home, clear to end of line, clear to end of screen) rather than
// through a TUI framework: the view is a pure function of a snapshot
// (render), which tests call directly, it needs no raw terminal mode (Ctrl-C
// is the only key), and it adds no dependency.

func (a *app) topCmd() *cobra.Command {
	var (
		interval, wait time.Duration
		once           bool
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live view of the fleet: per tier and worker, state, load, rate, latency, errors, cooldowns",
		Long: "top refreshes a view of the fleet in place until interrupted. Workers come from their heartbeats; latency\n" +
			"percentiles, queue depths and dispatcher counters from the components' NATS micro services ($SRV.STATS).\n" +
			"A tier's row sums its workers, and shows the worst of their latencies.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			nc, err := a.connect(ctx, "llmq-top")
			if err != nil {
				return err
			}
			defer nc.Close()
			s := a.subjects(nil)
			v, err := watchTop(ctx, nc, s)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if once {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
				fmt.Fprint(out, render(v.snapshot(ctx, nc, s, wait)))
				return nil
			}
			return liveTop(ctx, out, func(ctx context.Context) topSnapshot {
				return v.snapshot(ctx, nc, s, min(wait, interval/2))
			}, interval)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&interval, "interval", time.Second, "refresh interval")
	f.DurationVar(&wait, "wait", 1500*time.Millisecond, "how long to listen for heartbeats and micro replies")
	f.BoolVar(&once, "once", false, "print one frame, without terminal control sequences, and exit")
	return cmd
}

// liveTop redraws a frame every interval until ctx ends.
func liveTop(ctx context.Context, out io.Writer, snap func(context.Context) topSnapshot, interval time.Duration) error {
	width := 0
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(out, "\x1b[?1049h\x1b[?25l") // alternate screen, no cursor
		defer fmt.Fprint(out, "\x1b[?25h\x1b[?1049l")
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = w
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var b strings.Builder
		b.WriteString("\x1b[H")
		for line := range strings.Lines(render(snap(ctx))) {
			line = strings.TrimSuffix(line, "\n")
			if width > 0 && len(line) > width {
				line = line[:width]
			}
			b.WriteString(line + "\x1b[K\n")
		}
		b.WriteString("\x1b[J")
		if _, err := io.WriteString(out, b.String()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// topView follows the fleet's heartbeats, at most maxFleetWorkers.
type topView struct {
	mu      sync.Mutex
	workers map[string]*topWorker
	dropped atomic.Uint64 // heartbeats refused: malformed or over the cap
}

type topWorker struct {
	hb    schema.Heartbeat
	seen  time.Time
	marks []rateMark // recent (time, completed, failed), for rates
}

type rateMark struct {
	at           time.Time
	done, failed uint64
}

// rateWindow is how far back rates look, and maxMarks how many marks a
// worker keeps in it (a worker beating faster keeps every other one).
const (
	rateWindow = 10 * time.Second
	maxMarks   = 128
)

func watchTop(ctx context.Context, nc *nats.Conn, s broker.Subjects) (*topView, error) {
	v := &topView{workers: map[string]*topWorker{}}
	sub, err := nc.Subscribe(s.HeartbeatWildcard(), func(m *nats.Msg) {
		hb, ok := decodeBeat(s, m)
		if !ok {
			v.dropped.Add(1)
			return
		}
		v.beat(hb, time.Now())
	})
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	if err := nc.Publish(s.Announce(), nil); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *topView) beat(hb schema.Heartbeat, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if hb.State == schema.StateStopped {
		delete(v.workers, hb.Worker)
		return
	}
	w := v.workers[hb.Worker]
	if w == nil {
		if len(v.workers) >= maxFleetWorkers {
			v.dropped.Add(1)
			return
		}
		w = &topWorker{}
		v.workers[hb.Worker] = w
	} else if hb.Seq <= w.hb.Seq {
		return
	}
	w.hb, w.seen = hb, now
	w.marks = append(w.marks, rateMark{now, hb.Completed, hb.Failed})
	cut := 0
	for cut < len(w.marks)-1 && now.Sub(w.marks[cut].at) > rateWindow {
		cut++
	}
	w.marks = w.marks[cut:]
	if len(w.marks) > maxMarks {
		// Thin out, keeping the first and the last: rates need only those.
		kept := w.marks[:0]
		for i, mk := range w.marks {
			if i%2 == 0 || i == len(w.marks)-1 {
				kept = append(kept, mk)
			}
		}
		w.marks = kept
	}
}

// topSnapshot is what one frame shows.
type topSnapshot struct {
	Prefix      string
	At          time.Time
	Workers     []topWorkerRow
	Dispatchers []topDispatcherRow
	// Queued per tier, summed over the dispatchers.
	Queued map[string]int
	// Dropped counts the heartbeats refused so far.
	Dropped uint64
}

type topWorkerRow struct {
	HB            schema.Heartbeat
	Rate, ErrRate float64 // per second over the last rateWindow
	P50, P99      float64 // ms; P99 0 when the worker's micro service did not answer
}

type topDispatcherRow struct {
	ID      string
	Summary dispatcher.ServiceSummary
}

// snapshot reads the heartbeats and asks the micro services for their
// stats, waiting up to wait for replies.
func (v *topView) snapshot(ctx context.Context, nc *nats.Conn, s broker.Subjects, wait time.Duration) topSnapshot {
	prefix := s.Name()
	snap := topSnapshot{Prefix: prefix, At: time.Now(), Queued: map[string]int{}, Dropped: v.dropped.Load()}
	var ws, ds []micro.Stats
	var wg sync.WaitGroup
	wg.Go(func() { ws = microStats(ctx, nc, worker.ServiceName, prefix, wait) })
	wg.Go(func() { ds = microStats(ctx, nc, dispatcher.ServiceName, prefix, wait) })
	wg.Wait()
	p99 := map[string]worker.ServiceStats{}
	for _, st := range ws {
		var w worker.ServiceStats
		if len(st.Endpoints) > 0 && json.Unmarshal(st.Endpoints[0].Data, &w) == nil {
			p99[w.Worker] = w
		}
	}
	for _, st := range ds {
		var sum dispatcher.ServiceSummary
		if len(st.Endpoints) > 0 && json.Unmarshal(st.Endpoints[0].Data, &sum) == nil {
			snap.Dispatchers = append(snap.Dispatchers, topDispatcherRow{ID: st.Metadata["dispatcher"], Summary: sum})
			for t, n := range sum.Queued {
				snap.Queued[t] += n
			}
		}
	}
	slices.SortFunc(snap.Dispatchers, func(a, b topDispatcherRow) int { return strings.Compare(a.ID, b.ID) })

	now := snap.At
	v.mu.Lock()
	for id, w := range v.workers {
		if now.Sub(w.seen) > 3*time.Duration(max(w.hb.IntervalMs, 1))*time.Millisecond {
			delete(v.workers, id)
			continue
		}
		row := topWorkerRow{HB: w.hb, P50: w.hb.LatencyMs}
		if first, last := w.marks[0], w.marks[len(w.marks)-1]; last.at.Sub(first.at) > 0 {
			dt := last.at.Sub(first.at).Seconds()
			row.Rate = float64(last.done-first.done) / dt
			row.ErrRate = float64(last.failed-first.failed) / dt
		}
		if st, ok := p99[id]; ok {
			row.P99 = st.P99Ms
		}
		snap.Workers = append(snap.Workers, row)
	}
	v.mu.Unlock()
	slices.SortFunc(snap.Workers, func(a, b topWorkerRow) int {
		return cmp.Or(strings.Compare(a.HB.Tier, b.HB.Tier), strings.Compare(a.HB.Worker, b.HB.Worker))
	})
	return snap
}

// microStats sends $SRV.STATS.<name> and gathers the replies of the
// services on prefix until wait has passed.
func microStats(ctx context.Context, nc *nats.Conn, name, prefix string, wait time.Duration) []micro.Stats {
	subject, err := micro.ControlSubject(micro.StatsVerb, name, "")
	if err != nil {
		return nil
	}
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 4096)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil
	}
	var out []micro.Stats
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case m := <-ch:
			var st micro.Stats
			if json.Unmarshal(m.Data, &st) == nil && st.Metadata["prefix"] == prefix {
				out = append(out, st)
			}
		case <-timer.C:
			return out
		case <-ctx.Done():
			return out
		}
	}
}

// render draws a frame.
func render(s topSnapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "llmq top — prefix %s — %s — %d dispatcher(s), %d worker(s) — Ctrl-C quits\n\n",
		s.Prefix, s.At.Format(time.TimeOnly), len(s.Dispatchers), len(s.Workers))
	if len(s.Workers) == 0 {
		b.WriteString("no workers (none beat; is NATS right and a worker running?)\n")
	}
	if s.Dropped > 0 {
		fmt.Fprintf(&b, "%d heartbeats refused (malformed, or over %d workers)\n", s.Dropped, maxFleetWorkers)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIER / WORKER\tSTATE\tIN-FLIGHT\tQUEUED\tREQ/S\tP50 MS\tP99 MS\tDONE\tERRORS\tERR/S\tCOOLING")
	for i := 0; i < len(s.Workers); {
		tier := s.Workers[i].HB.Tier
		j := i
		for j < len(s.Workers) && s.Workers[j].HB.Tier == tier {
			j++
		}
		rows := s.Workers[i:j]
		var in, capa, ready, cooling int
		var rate, errRate, p50, p99 float64
		var done, failed uint64
		for _, r := range rows {
			in += r.HB.InFlight
			capa += r.HB.Capacity
			if r.HB.State == schema.StateReady {
				ready++
			}
			if coolingNow(r.HB, s.At) {
				cooling++
			}
			rate += r.Rate
			errRate += r.ErrRate
			p50, p99 = max(p50, r.P50), max(p99, r.P99)
			done += r.HB.Completed
			failed += r.HB.Failed
		}
		coolCol := "-"
		if cooling > 0 {
			coolCol = fmt.Sprintf("%d of %d", cooling, len(rows))
		}
		fmt.Fprintf(tw, "%s\t%d/%d ready\t%d/%d\t%d\t%.1f\t%s\t%s\t%d\t%d\t%.1f\t%s\n",
			tier, ready, len(rows), in, capa, s.Queued[tier], rate, ms(p50), ms(p99), done, failed, errRate, coolCol)
		for _, r := range rows {
			fmt.Fprintf(tw, "  %s\t%s\t%d/%d\t\t%.1f\t%s\t%s\t%d\t%d\t%.1f\t%s\n",
				r.HB.Worker, r.HB.State, r.HB.InFlight, r.HB.Capacity, r.Rate, ms(r.P50), ms(r.P99),
				r.HB.Completed, r.HB.Failed, r.ErrRate, coolingText(r.HB, s.At))
		}
		i = j
	}
	tw.Flush()
	hbs := make([]schema.Heartbeat, len(s.Workers))
	for i, r := range s.Workers {
		hbs[i] = r.HB
	}
	printDemand(&b, hbs, s.Queued)
	if len(s.Dispatchers) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DISPATCHER\tRECEIVED\tDISPATCHED\tRETRIES\tFALLBACKS\tREDISPATCHED\tERRORS")
		for _, d := range s.Dispatchers {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", d.ID, d.Summary.Received, d.Summary.Dispatched,
				d.Summary.Retries, d.Summary.Fallbacks, d.Summary.Redispatched, errorCounts(d.Summary.Errors))
		}
		tw.Flush()
	}
	return b.String()
}

func ms(v float64) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func errorCounts(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// coolingNow reports whether the worker's deployment rests at now.
func coolingNow(hb schema.Heartbeat, now time.Time) bool {
	return hb.CoolingUntilMs > now.UnixMilli()
}

// coolingText is the cooldown column: the reason and the time left, or "-".
func coolingText(hb schema.Heartbeat, now time.Time) string {
	if !coolingNow(hb, now) {
		return "-"
	}
	left := time.UnixMilli(hb.CoolingUntilMs).Sub(now)
	return fmt.Sprintf("%s %.1fs", cmp.Or(hb.CoolingReason, "cooling"), left.Seconds())
}
