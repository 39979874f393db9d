//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/schema"
)

// Load and fault shape of TestCluster_FrozenNode (issue 10, "cluster
// faults").
const (
	clusterProducers = 16
	clusterDeadline  = 5 * time.Second
	clusterWarmup    = 3 * time.Second
	clusterWindow    = 40 * time.Second // each of: no fault, fault
	clusterFreezeAt  = 5 * time.Second  // into the fault window
	clusterFrozenFor = 15 * time.Second
	// minFaultRatio is the share of the no-fault window's jobs the fault
	// window must complete (see the test's comment).
	minFaultRatio = 0.8
	// clusterRoutePing is the nodes' cluster ping_interval (ping_max 2):
	// what an operator sets in nats-server.conf, cluster { ping_interval:
	// "1s", ping_max: 2 }, so that a live node gives up the route to a
	// silent peer within 2-3 s. With the server's default (capped at 30 s
	// for routes) a live node keeps forwarding jobs over the frozen node's
	// route for the whole freeze (about 60% of the jobs complete); with 2 s,
	// 80-84%.
	clusterRoutePing = 1 * time.Second
	// clusterResendAfter, when set, makes each producer send a job again
	// when it had no answer within it (as client.Config.AttemptTimeout
	// does), on a reply subject of its own. 0: a lost job costs its
	// producer the whole deadline.
	clusterResendAfter = 0 * time.Second
)

// TestCluster_FrozenNode_FleetKeepsWorkingWithoutDuplicates runs real
// llmq dispatchers and workers on a real 3-node NATS cluster (one OS
// process per node) under steady closed-loop interactive load: 16
// producers, each sending its next job when the last one is answered or its
// 5 s deadline passes. After 40 s without a fault, one node — serving a
// dispatcher, a worker and a third of the producers — is frozen with
// SIGSTOP for 15 s, as a network partition would leave it: its sockets stay
// open and nothing on them is answered. Over the 40 s window holding the
// freeze the fleet must complete at least minFaultRatio of the jobs it
// completed in the 40 s without one, and no job may be answered twice. The
// log gives the figures: ok per second, each producer's time-outs, each
// process's connection events.
//
// The goal is 90%, and ordinary runs meet it (91.5%, 94.6%; before the
// ping and reconnect fixes 60-66% with 7-8 duplicates). It is not the
// assertion: the floor of this design is one lost job per producer whose
// job was in flight through the frozen node in the 2-3 s before
// connections and routes give it up, each costing its producer the whole
// 5 s deadline, about 12% of the window in the worst case; and with the
// machine loaded (two busy loops beside the race-enabled suite) a run
// measured 85.0%. A test that fails by chance blocks everyone, so it
// asserts what every run keeps, far above the old figure.
//
// It takes about 90 s, so -short skips it; the full suite runs it.
func TestCluster_FrozenNode_FleetKeepsWorkingWithoutDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("a 90 s cluster fault run; the full suite (go test ./...) runs it")
	}
	// Not parallel: the test compares two windows of throughput, so the
	// package's other tests must not load the machine during one of them.

	nodes := startNATSCluster(t, 3, natsNodeSpec{RoutePing: clusterRoutePing, RoutePingsOut: 2})
	frozen := nodes[2]
	prefix := brokertest.Subjects(t).Prefix
	cfg := writeConfig(t, fmt.Sprintf(`model_list:
  - model_name: tier1
    litellm_params: {model: sim/a, sim: {ttft: 50ms, parallel: 8}}
    model_info: {id: t1-a}
  - model_name: tier1
    litellm_params: {model: sim/b, sim: {ttft: 50ms, parallel: 8}}
    model_info: {id: t1-b}
  - model_name: tier1
    litellm_params: {model: sim/c, sim: {ttft: 50ms, parallel: 8}}
    model_info: {id: t1-c}
router_settings:
  routing_strategy: least-busy
llmq_settings:
  prefix: %s
`, prefix))

	// Each process is given its home node only: nats.go shuffles a list of
	// URLs, and the test must know what the frozen node serves. It learns
	// the other nodes from the cluster (the servers' connect_urls) and
	// fails over to them.
	var procs, dispatchers []*proc
	for i, n := range []*natsNode{nodes[0], frozen} {
		name := fmt.Sprintf("d%d-%s", i, n.name)
		p := startProc(t, name, "dispatcher", "-c", cfg, "--nats", n.clientURL, "--log-format", "json", "--id", name)
		p.awaitLog(t, dispatcherUp)
		procs = append(procs, p)
		dispatchers = append(dispatchers, p)
	}
	for i, dep := range []string{"t1-a", "t1-b", "t1-c"} {
		p := startProc(t, "worker-"+dep+"-"+nodes[i].name, "worker", "-c", cfg, "--deployment", dep, "--nats", nodes[i].clientURL, "--log-format", "json")
		p.awaitLog(t, workerUp)
		procs = append(procs, p)
	}
	for _, p := range dispatchers {
		awaitLogCount(t, p, `"msg":"worker joined"`, 3)
	}

	subjects := broker.Subjects{Prefix: prefix}
	run := newClusterLoad(t, subjects)
	run.resendAfter = clusterResendAfter
	for i := range clusterProducers {
		home := i % len(nodes)
		urls := []string{nodes[home].clientURL}
		for j := range nodes {
			if j != home {
				urls = append(urls, nodes[j].clientURL)
			}
		}
		run.producer(t, fmt.Sprintf("p%02d-%s", i, nodes[home].name), urls)
	}

	run.setPhase(phaseWarmup)
	run.start()
	time.Sleep(clusterWarmup) // the load's schedule, not a synchronisation
	run.setPhase(phaseCalm)
	time.Sleep(clusterWindow)
	run.setPhase(phaseFault)
	time.Sleep(clusterFreezeAt)
	freezeAt := time.Now()
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze %s: %v", frozen.name, err)
	}
	time.Sleep(clusterFrozenFor)
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("thaw %s: %v", frozen.name, err)
	}
	thawAt := time.Now()
	time.Sleep(clusterWindow - clusterFreezeAt - clusterFrozenFor)
	run.setPhase(phaseDone)
	run.stop()

	calm, fault := run.window(phaseCalm), run.window(phaseFault)
	t.Logf("cluster: 3 nodes, %d producers (deadline %s), 2 dispatchers, 3 workers (sim 50 ms, 8 slots); node %s (1 dispatcher, 1 worker, %d producers) frozen %s at %s, thawed %s",
		clusterProducers, clusterDeadline, frozen.name, clusterProducers/len(nodes), clusterFrozenFor, freezeAt.Format("15:04:05.000"), thawAt.Format("15:04:05.000"))
	t.Logf("no fault %s: %s", clusterWindow, calm)
	t.Logf("fault    %s: %s", clusterWindow, fault)
	t.Logf("ok per second, no fault: %v", run.timeline(phaseCalm))
	t.Logf("ok per second, fault (frozen from second %d to %d): %v", clusterFreezeAt/time.Second, (clusterFreezeAt+clusterFrozenFor)/time.Second, run.timeline(phaseFault))
	t.Logf("producers' jobs timed out at:%s", run.timeouts())
	ratio := float64(fault.ok) / float64(max(calm.ok, 1))
	dups := run.duplicates()
	t.Logf("ratio fault/no-fault ok = %.1f%% (%d/%d); job attempts answered more than once: %d; jobs resent whose copies both ran: %d", 100*ratio, fault.ok, calm.ok, len(dups), run.ranTwice())
	logEvents(t, run, procs, nodes)

	if calm.ok < clusterProducers || calm.failed() > 0 {
		t.Errorf("without a fault the fleet should answer every job: %s", calm)
	}
	if ratio < minFaultRatio {
		t.Errorf("with node %s frozen for %s the fleet completed %.1f%% of the jobs it completes without a fault; want ≥ %.0f%%", frozen.name, clusterFrozenFor, 100*ratio, 100*minFaultRatio)
	}
	for i, d := range dups {
		if i == 10 {
			t.Errorf("... %d more", len(dups)-i)
			break
		}
		t.Errorf("job %s answered %d times: %s", d.id, d.n, strings.Join(d.answers, " / "))
	}
}

// awaitLogCount waits until p logged text n times.
func awaitLogCount(t *testing.T, p *proc, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for strings.Count(p.stderr.String(), text) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s logged %q %d times, not %d, within %s; log:\n%s", p.name, text, strings.Count(p.stderr.String(), text), n, wait, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a log
	}
}

// Phases of the load; an outcome counts toward the phase it ended in.
const (
	phaseWarmup int32 = iota
	phaseCalm
	phaseFault
	phaseDone
	phases
)

// clusterLoad is the producers of TestCluster_FrozenNode and what they saw.
type clusterLoad struct {
	subjects    broker.Subjects
	resendAfter time.Duration // 0: never
	phase       atomic.Int32
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	loops       []func()
	events      *outBuf // producers' connection events

	mu        sync.Mutex
	from      [phases]time.Time
	stats     [phases]windowStats
	perSecond [phases][]int       // ok per second of each phase
	lost      map[string][]string // per producer: when its jobs timed out, into the fault window
	answers   map[string][]string
	waiting   map[string]chan *nats.Msg
}

// windowStats counts the outcomes of one phase.
type windowStats struct {
	ok, timeouts, late, publishErrs, resent int
	errs                                    map[string]int
}

func (w windowStats) failed() int {
	n := w.timeouts + w.publishErrs
	for _, c := range w.errs {
		n += c
	}
	return n
}

func (w windowStats) String() string {
	return fmt.Sprintf("ok=%d timeouts=%d errors=%v late_answers=%d publish_errors=%d resent=%d", w.ok, w.timeouts, w.errs, w.late, w.publishErrs, w.resent)
}

func newClusterLoad(t *testing.T, subjects broker.Subjects) *clusterLoad {
	l := &clusterLoad{subjects: subjects, events: newOutBuf(), answers: map[string][]string{}, lost: map[string][]string{}, waiting: map[string]chan *nats.Msg{}}
	for i := range l.stats {
		l.stats[i].errs = map[string]int{}
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	t.Cleanup(l.stop)
	return l
}

func (l *clusterLoad) setPhase(p int32) {
	l.mu.Lock()
	l.from[p] = time.Now()
	l.mu.Unlock()
	l.phase.Store(p)
}

// producer connects one producer (through broker.Connect: its ping
// interval and failover) to urls[0], failing over to the others in order.
func (l *clusterLoad) producer(t *testing.T, name string, urls []string) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(l.events, &slog.HandlerOptions{Level: slog.LevelInfo})).With("producer", name)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	nc, err := broker.Connect(ctx, broker.ConnectConfig{URLs: urls, Name: name, Logger: logger, Options: []nats.Option{nats.DontRandomize()}})
	if err != nil {
		t.Fatalf("producer %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	inbox := nc.NewInbox()
	sub, err := nc.Subscribe(inbox+".*", l.onAnswer)
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := broker.Flush(ctx, nc); err != nil {
		t.Fatal(err)
	}
	l.loops = append(l.loops, func() { l.loop(nc, name, inbox) })
}

func (l *clusterLoad) start() {
	for _, loop := range l.loops {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			loop()
		}()
	}
}

// stop ends the load and waits for every producer's last job. Safe to
// call twice.
func (l *clusterLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// loop sends jobs one at a time, each with its own reply subject (so
// every answer to it is seen, where a NATS request keeps only the first)
// and a 5 s deadline. With resendAfter set, a job not answered within it
// is sent again, on a reply subject of its own, as client.AttemptTimeout
// does.
func (l *clusterLoad) loop(nc *nats.Conn, name, inbox string) {
	timer := time.NewTimer(clusterDeadline)
	timer.Stop()
	for i := 0; l.ctx.Err() == nil; i++ {
		id := fmt.Sprintf("%s-%d", name, i)
		got := make(chan *nats.Msg, 1)
		l.mu.Lock()
		l.waiting[id] = got
		l.mu.Unlock()
		deadline := time.Now().Add(clusterDeadline)
		var m *nats.Msg
		var err error
		attempt := 0
		for ; m == nil && err == nil && time.Now().Before(deadline); attempt++ {
			err = nc.PublishMsg(&nats.Msg{
				Subject: l.subjects.Jobs("tier1"),
				Reply:   fmt.Sprintf("%s.%s_%d", inbox, id, attempt),
				Header: nats.Header{
					schema.HeaderContentType: {schema.ContentTypeJSON},
					schema.HeaderDeadline:    {fmt.Sprint(deadline.UnixMilli())},
				},
				Data: fmt.Appendf(nil, `{"messages":[{"role":"user","content":%q}],"max_tokens":1}`, id),
			})
			if err != nil {
				break
			}
			wait := time.Until(deadline)
			if l.resendAfter > 0 && l.resendAfter < wait {
				wait = l.resendAfter
			}
			timer.Reset(wait)
			select {
			case m = <-got:
				if !timer.Stop() {
					<-timer.C
				}
			case <-timer.C:
			}
		}
		l.mu.Lock()
		delete(l.waiting, id)
		phase := l.phase.Load()
		w := &l.stats[phase]
		w.resent += max(attempt-1, 0)
		switch {
		case err != nil:
			w.publishErrs++
		case m == nil:
			w.timeouts++
			l.lost[name] = append(l.lost[name], fmt.Sprintf("%.1fs", time.Since(l.from[phaseFault]).Seconds()))
		case answerCode(m) != "":
			w.errs[answerCode(m)]++
		default:
			w.ok++
			s := int(time.Since(l.from[phase]) / time.Second)
			for len(l.perSecond[phase]) <= s {
				l.perSecond[phase] = append(l.perSecond[phase], 0)
			}
			l.perSecond[phase][s]++
		}
		l.mu.Unlock()
		if err != nil {
			select {
			case <-time.After(100 * time.Millisecond): // not a spin while the connection is down
			case <-l.ctx.Done():
			}
		}
	}
}

// onAnswer records every answer, by job and attempt, and hands the first
// to the waiting producer.
func (l *clusterLoad) onAnswer(m *nats.Msg) {
	token := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	id := token[:max(strings.LastIndexByte(token, '_'), 0)]
	what := answerCode(m)
	if what == "" {
		var resp schema.Response
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			what = "unreadable: " + err.Error()
		} else if what = resp.Text(); what != id {
			what = fmt.Sprintf("answer %q for job %s", what, id)
		}
		if resp.Routing != nil {
			what += fmt.Sprintf(" (worker %s, dispatcher %s, attempts %d)", resp.Routing.Worker, resp.Routing.Dispatcher, resp.Routing.Attempts)
		}
	} else {
		what = fmt.Sprintf("error:%s (%s)", what, m.Header.Get(schema.HeaderErrorMessage))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers[token] = append(l.answers[token], time.Now().Format("15:04:05.000")+" "+what)
	if got, ok := l.waiting[id]; ok {
		select {
		case got <- m:
		default:
		}
	} else if len(l.answers[token]) == 1 {
		l.stats[l.phase.Load()].late++
	}
}

// answerCode is the error code of an answer ("" for a success);
// "no_responders" when the server said no dispatcher listens.
func answerCode(m *nats.Msg) string {
	if code := m.Header.Get(schema.HeaderErrorCode); code != "" {
		return code
	}
	if m.Header.Get("Status") == "503" && len(m.Data) == 0 {
		return "no_responders"
	}
	return ""
}

func (l *clusterLoad) window(p int32) windowStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.stats[p]
	w.errs = map[string]int{}
	for k, v := range l.stats[p].errs {
		w.errs[k] = v
	}
	return w
}

// timeline is the ok answers in each second of phase p.
func (l *clusterLoad) timeline(p int32) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.perSecond[p]...)
}

// timeouts lists, per producer, when its jobs timed out (seconds into the
// fault window).
func (l *clusterLoad) timeouts() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for n := range l.lost {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, " %s:%v", n, l.lost[n])
	}
	return b.String()
}

// ranTwice counts the jobs answered on more than one attempt (resent, and
// both copies ran).
func (l *clusterLoad) ranTwice() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	attempts := map[string]int{}
	for token := range l.answers {
		attempts[token[:max(strings.LastIndexByte(token, '_'), 0)]]++
	}
	n := 0
	for _, a := range attempts {
		if a > 1 {
			n++
		}
	}
	return n
}

type duplicate struct {
	id      string
	n       int
	answers []string
}

func (l *clusterLoad) duplicates() []duplicate {
	l.mu.Lock()
	defer l.mu.Unlock()
	var dups []duplicate
	for id, a := range l.answers {
		if len(a) > 1 {
			dups = append(dups, duplicate{id, len(a), a})
		}
	}
	sort.Slice(dups, func(i, j int) bool { return dups[i].id < dups[j].id })
	return dups
}

// eventRE picks the log lines that tell what a fault did: connections
// lost and regained, workers given up, jobs failed.
var eventRE = regexp.MustCompile(`nats (disconnected|reconnected|connection closed)|connection reconnected|worker lost|worker joined|no_deployments|"level":"ERROR"`)

// logEvents logs what each process and producer saw of the fault.
func logEvents(t *testing.T, l *clusterLoad, procs []*proc, nodes []*natsNode) {
	t.Helper()
	for _, n := range nodes {
		var peers []string
		for _, line := range strings.Split(strings.TrimSpace(n.stdout.String()), "\n")[1:] {
			peers = append(peers, line)
		}
		t.Logf("node %s routes: %s", n.name, strings.Join(peers, " "))
	}
	for _, p := range procs {
		var lines []string
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			if eventRE.MatchString(line) {
				lines = append(lines, line)
			}
		}
		if len(lines) > 12 {
			lines = append(lines[:12], fmt.Sprintf("... %d more", len(lines)-12))
		}
		t.Logf("%s:\n  %s", p.name, strings.Join(lines, "\n  "))
	}
	ev := strings.Split(strings.TrimSpace(l.events.String()), "\n")
	if len(ev) > 40 {
		ev = append(ev[:40], fmt.Sprintf("... %d more", len(ev)-40))
	}
	t.Logf("producers:\n  %s", strings.Join(ev, "\n  "))
}
