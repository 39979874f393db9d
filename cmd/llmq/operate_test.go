package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/metrics/metricstest"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// background runs an llmq command in-process against u until the test
// ends; stop ends it earlier.
func (u *upRun) background(t *testing.T, args ...string) (stdout, stderr *outBuf, done <-chan error, stop func()) {
	t.Helper()
	stdout, stderr = newOutBuf(), newOutBuf()
	cmd := newApp(stdout, stderr).root()
	cmd.SetArgs(append(args, "--nats", u.URL, "--prefix", u.Prefix, "--log-format", "json"))
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- cmd.ExecuteContext(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("llmq %s: %v\n%s", args[0], err, stderr)
				}
			case <-time.After(wait):
				t.Errorf("llmq %s did not stop", args[0])
			}
		})
	}
	t.Cleanup(stop)
	return stdout, stderr, ch, stop
}

// connectTo returns a NATS connection to u, closed when the test ends.
func connectTo(t *testing.T, u *upRun) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ping sends $SRV.PING and gathers, for collect, the replies of services
// on prefix: service name -> instance ids (dispatcher, worker or gateway
// id from the metadata).
func ping(t *testing.T, nc *nats.Conn, prefix string, collect time.Duration) map[string][]string {
	t.Helper()
	subject, _ := micro.ControlSubject(micro.PingVerb, "", "")
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	timer := time.After(collect)
	for {
		select {
		case m := <-ch:
			var p micro.Ping
			if err := json.Unmarshal(m.Data, &p); err != nil {
				t.Fatalf("ping reply: %v: %s", err, m.Data)
			}
			if p.Metadata["prefix"] != prefix {
				continue
			}
			id := p.Metadata["dispatcher"] + p.Metadata["worker"] + p.Metadata["url"]
			out[p.Name] = append(out[p.Name], id)
		case <-timer:
			for _, ids := range out {
				slices.Sort(ids)
			}
			return out
		}
	}
}

// fleet is `llmq status --json`.
func fleet(t *testing.T, u *upRun) []schema.Heartbeat {
	t.Helper()
	out, _, err := u.run(t, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var hbs []schema.Heartbeat
	if err := json.Unmarshal([]byte(out), &hbs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return hbs
}

var urlInLog = regexp.MustCompile(`"msg":"metrics listening","url":"(http://[^"]+/metrics)"`)

func TestOperate_MicroPingFindsEveryComponent(t *testing.T) {
	t.Parallel()
	u := startUp(t, "--gateway", "127.0.0.1:0")
	upGateway := u.Stdout.await(t, gatewayRE, nil)[1]
	_, _, wDone, _ := u.background(t, "worker", "--tier", "extra", "--model", "sim/x", "--heartbeat", "200ms")
	_, _, dDone, _ := u.background(t, "dispatcher")
	gOut, _, gDone, _ := u.background(t, "gateway", "--listen", "127.0.0.1:0")
	otherGateway := gOut.await(t, regexp.MustCompile(`llmq gateway: (http://\S+/v1)`), gDone)[1]
	nc := connectTo(t, u)

	var found map[string][]string
	deadline := time.Now().Add(wait)
	for {
		select {
		case err := <-wDone:
			t.Fatalf("worker ended: %v", err)
		case err := <-dDone:
			t.Fatalf("dispatcher ended: %v", err)
		default:
		}
		found = ping(t, nc, u.Prefix, 300*time.Millisecond)
		if len(found[worker.ServiceName]) == 6 && len(found[dispatcher.ServiceName]) == 2 && len(found[gateway.ServiceName]) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("$SRV.PING found %v; want 2 dispatchers, 6 workers (the demo's 5 and one more), 2 gateways", found)
		}
	}
	if g := found[gateway.ServiceName]; !slices.Contains(g, upGateway) || !slices.Contains(g, otherGateway) {
		t.Errorf("gateways %v, want %s and %s", g, upGateway, otherGateway)
	}
	// The workers micro finds are the fleet `llmq status` shows.
	var ids []string
	for _, hb := range fleet(t, u) {
		ids = append(ids, hb.Worker)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, found[worker.ServiceName]) {
		t.Errorf("status shows %v, micro finds %v", ids, found[worker.ServiceName])
	}
}

func TestOperate_StatusJSONMatchesTheFleet(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	hbs := fleet(t, u)
	// The demo config: deployment -> tier and capacity.
	want := map[string]struct {
		tier     string
		capacity int
	}{"tier1-gpu-a": {"tier1", 4}, "tier1-gpu-b": {"tier1", 2}, "tier2-flash": {"tier2", 16}, "tier3-sonnet": {"tier3", 16}, "embed-sim": {"embed", 8}}
	if len(hbs) != len(want) {
		t.Fatalf("%d workers, want %d: %+v", len(hbs), len(want), hbs)
	}
	for _, hb := range hbs {
		w, ok := want[hb.Deployment]
		if !ok || hb.Tier != w.tier || hb.Capacity != w.capacity || hb.State != schema.StateReady || hb.Provider != "sim" ||
			hb.Subject != u.Prefix+".w."+hb.Worker || hb.CoolingUntilMs != 0 {
			t.Errorf("worker %+v, want %+v", hb, w)
		}
	}
	// The dispatcher's own view, from its micro stats endpoint, is the same
	// fleet.
	nc := connectTo(t, u)
	found := ping(t, nc, u.Prefix, 300*time.Millisecond)
	if len(found[dispatcher.ServiceName]) != 1 {
		t.Fatalf("dispatchers %v", found)
	}
	m, err := nc.Request(u.Prefix+".ctl.dispatcher."+found[dispatcher.ServiceName][0]+".stats", nil, wait)
	if err != nil {
		t.Fatal(err)
	}
	var s dispatcher.Stats
	if err := json.Unmarshal(m.Data, &s); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, ts := range s.Tiers {
		for _, hb := range ts.Workers {
			seen = append(seen, hb.Worker)
		}
	}
	var listed []string
	for _, hb := range hbs {
		listed = append(listed, hb.Worker)
	}
	slices.Sort(seen)
	slices.Sort(listed)
	if !slices.Equal(seen, listed) {
		t.Fatalf("dispatcher sees %v, status lists %v", seen, listed)
	}
}

const flakyConfig = `model_list:
  - model_name: steady
    litellm_params: {model: sim/ok, sim: {parallel: 2}}
    model_info: {id: steady-1}
  - model_name: flaky
    litellm_params: {model: sim/broken, sim: {error_rate: 1}}
    model_info: {id: flaky-1}
router_settings:
  num_retries: 0
  allowed_fails: 1
  cooldown_time: 60
`

func TestOperate_CooldownShowsInStatusAndTop(t *testing.T) {
	t.Parallel()
	u := startUp(t, "-c", writeConfig(t, flakyConfig))
	if _, _, err := u.run(t, "complete", "--tier", "flaky", "hi"); schema.CodeOf(err) != schema.CodeProviderError {
		t.Fatalf("first call: %v, want provider_error", err)
	}
	var cooling schema.Heartbeat
	deadline := time.Now().Add(wait)
	for {
		for _, hb := range fleet(t, u) {
			if hb.Deployment == "flaky-1" {
				cooling = hb
			}
		}
		if cooling.CoolingUntilMs > time.Now().UnixMilli() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed flaky-1 cooling: %+v", cooling)
		}
	}
	if cooling.CoolingReason != schema.CodeProviderError || cooling.CoolingUntilMs > time.Now().Add(61*time.Second).UnixMilli() {
		t.Fatalf("cooling %+v", cooling)
	}
	// While it rests, the tier answers cooling_down.
	if _, _, err := u.run(t, "complete", "--tier", "flaky", "hi"); schema.CodeOf(err) != schema.CodeCoolingDown {
		t.Fatalf("second call: %v, want cooling_down", err)
	}
	table, _, err := u.run(t, "status")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^flaky .* provider_error \d+(\.\d)?s\s*$`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^steady .* -\s*$`).MatchString(table) || !strings.Contains(table, "COOLING") {
		t.Fatalf("status table does not show the cooldown:\n%s", table)
	}
	top, _, err := u.run(t, "top", "--once", "--wait", "300ms")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^flaky\s+1/1 ready .* 1 of 1\s*$`).MatchString(top) ||
		!regexp.MustCompile(`(?m)^  flaky-1-\S+\s+ready .* provider_error \d+(\.\d)?s\s*$`).MatchString(top) {
		t.Fatalf("top does not show the cooldown:\n%s", top)
	}
	if strings.Contains(top, "\x1b") {
		t.Fatalf("--once printed control sequences:\n%q", top)
	}
}

func TestOperate_TopRefreshesInPlace(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	for range 4 {
		if _, _, err := u.run(t, "complete", "--tier", "tier2", "--max-tokens", "4", "hi"); err != nil {
			t.Fatal(err)
		}
	}
	out, _, done, stop := u.background(t, "top", "--interval", "300ms", "--wait", "150ms")
	// Three frames, each drawn from the top-left corner over the last.
	frames := regexp.MustCompile(`(?s)(\x1b\[H.*?\x1b\[J){3}`)
	out.await(t, frames, done)
	stop()
	screen := out.String()
	last := screen[strings.LastIndex(screen, "\x1b[H"):]
	for _, want := range []string{
		"llmq top — prefix " + u.Prefix, "TIER / WORKER", "tier1 ", "tier2 ", "tier3 ", "  tier1-gpu-a-", "DISPATCHER", "d-",
	} {
		if !strings.Contains(last, want) {
			t.Errorf("frame lacks %q:\n%s", want, last)
		}
	}
	// Every line clears what the previous frame left on it.
	for _, line := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(last, "\x1b[H"), "\x1b[J"), "\n") {
		if line != "" && !strings.HasSuffix(line, "\x1b[K") {
			t.Fatalf("line %q does not end with clear-to-end-of-line", line)
		}
	}
	// tier2 ran 4 jobs: its row has them, and latency percentiles (the
	// p99 from the worker's micro service).
	once, _, err := u.run(t, "top", "--once", "--wait", "1s")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^tier2\s+1/1 ready\s+\d+/16\s+0\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s+4\s+0\s`).FindStringSubmatch(once)
	if row == nil {
		t.Fatalf("no tier2 row with 4 jobs and latencies:\n%s", once)
	}
}

func TestRender_FrameColumns(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	snap := topSnapshot{Prefix: "llm", At: now, Queued: map[string]int{"tier1": 3}, Workers: []topWorkerRow{
		{HB: schema.Heartbeat{Worker: "tier1-gpu-a-x", Tier: "tier1", State: "ready", InFlight: 4, Capacity: 4, Completed: 120, Failed: 2, LatencyMs: 60},
			Rate: 12.5, ErrRate: 0.2, P50: 60, P99: 140.25},
		{HB: schema.Heartbeat{Worker: "tier1-gpu-b-y", Tier: "tier1", State: "ready", InFlight: 1, Capacity: 2, Completed: 30,
			CoolingUntilMs: now.Add(4200 * time.Millisecond).UnixMilli(), CoolingReason: "rate_limited"}, Rate: 2, P50: 90, P99: 0},
	}, Dispatchers: []topDispatcherRow{{ID: "d-1", Summary: dispatcher.ServiceSummary{Received: 160, Dispatched: 152, Retries: 3,
		Errors: map[string]uint64{"overloaded": 2, "timeout": 1}}}}}
	got := render(snap)
	want := `llmq top — prefix llm — 12:00:00 — 1 dispatcher(s), 2 worker(s) — Ctrl-C quits

TIER / WORKER    STATE      IN-FLIGHT  QUEUED  REQ/S  P50 MS  P99 MS  DONE  ERRORS  ERR/S  COOLING
tier1            2/2 ready  5/6        3       14.5   90.0    140.2   150   2       0.2    1 of 2
  tier1-gpu-a-x  ready      4/4                12.5   60.0    140.2   120   2       0.2    -
  tier1-gpu-b-y  ready      1/2                2.0    90.0    -       30    0       0.0    rate_limited 4.2s

DISPATCHER  RECEIVED  DISPATCHED  RETRIES  FALLBACKS  REDISPATCHED  ERRORS
d-1         160       152         3        0          0             overloaded=2 timeout=1
`
	if got != want {
		t.Fatalf("frame:\n%s\nwant:\n%s", got, want)
	}
}

func TestOperate_GatewayDispatcherAndWorkerCommandsServeMetrics(t *testing.T) {
	t.Parallel()
	u := startUp(t)
	// The gateway reads its key (through os.environ/) and its tiers from
	// the config.
	// Its time-out is router_settings.timeout: the sleepy tier takes 30 s
	// to its first token.
	gwConfig := writeConfig(t, "model_list:\n  - model_name: solo\n    litellm_params: {model: sim/x}\n"+
		"  - model_name: sleepy\n    litellm_params: {model: sim/z, sim: {ttft: 30s}}\n"+
		"router_settings: {timeout: 300ms}\n"+
		"general_settings:\n  master_key: os.environ/LLMQ_GW_CMD_KEY\nenvironment_variables:\n  LLMQ_GW_CMD_KEY: sk-cmd\n")
	gOut, _, gDone, _ := u.background(t, "gateway", "-c", gwConfig, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	base := gOut.await(t, regexp.MustCompile(`llmq gateway: (http://\S+/v1)`), gDone)[1]
	gMetrics := gOut.await(t, regexp.MustCompile(`metrics: (http://\S+/metrics)`), gDone)[1]
	_, dErr, dDone, _ := u.background(t, "dispatcher", "--metrics", "127.0.0.1:0")
	dMetrics := dErr.await(t, urlInLog, dDone)[1]
	_, wErr, wDone, _ := u.background(t, "worker", "--tier", "solo", "--model", "sim/x", "--concurrency", "3", "--metrics", "127.0.0.1:0")
	wMetrics := wErr.await(t, urlInLog, wDone)[1]
	_, sErr, sDone, _ := u.background(t, "worker", "-c", gwConfig, "--deployment", "sleepy")
	sErr.await(t, regexp.MustCompile(`"msg":"worker started"`), sDone)

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: wait}
	post := func(key string, model ...string) *http.Response {
		tier := "solo"
		if len(model) > 0 {
			tier = model[0]
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions",
			strings.NewReader(`{"model":"`+tier+`","max_tokens":3,"messages":[{"role":"user","content":"one two three"}]}`))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := post(""); resp.StatusCode != 401 {
		t.Fatalf("no key: status %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	start := time.Now()
	if resp := post("sk-cmd", "sleepy"); resp.StatusCode != 504 || time.Since(start) > 10*time.Second {
		t.Fatalf("sleepy: status %d after %s, want 504 at the 300 ms time-out", resp.StatusCode, time.Since(start))
	} else {
		resp.Body.Close()
	}
	resp := post("sk-cmd")
	var c schema.Response
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 || c.Text() != "one two three" || c.Routing.Tier != "solo" {
		t.Fatalf("status %d, %+v, %v", resp.StatusCode, c, err)
	}
	resp.Body.Close()

	deadline := time.Now().Add(wait)
	for {
		g, d, w := metricstest.Scrape(t, gMetrics), metricstest.Scrape(t, dMetrics), metricstest.Scrape(t, wMetrics)
		ok := g.Sum("llmq_gateway_requests_total", "tier", "solo", "status", "200") == 1 && g.Sum("llmq_gateway_requests_total", "status", "401") == 1 &&
			w.Sum("llmq_worker_jobs_total", "tier", "solo", "outcome", "ok") == 1 && w.Sum("llmq_worker_capacity_jobs", "tier", "solo") == 3 &&
			d.Sum("llmq_dispatcher_workers", "tier", "solo", "state", "ready") == 1 && d.Sum("llmq_dispatcher_heartbeats_total", "tier", "solo") > 0
		if ok {
			// One process, one component: the gateway's scrape has no worker
			// series, the worker's no gateway series.
			if g.Has("llmq_worker_capacity_jobs") || w.Has("llmq_gateway_requests_total") || d.Has("llmq_worker_jobs_total") {
				t.Fatalf("series of another component")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never added up:\ngateway %v\ndispatcher %v\nworker %v", g["llmq_gateway_requests_total"], d["llmq_dispatcher_workers"], w["llmq_worker_jobs_total"])
		}
		time.Sleep(20 * time.Millisecond) // polling scrapes
	}
}
