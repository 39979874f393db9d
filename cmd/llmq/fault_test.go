package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

// chaos is an OpenAI-compatible fake provider that misbehaves at set
// rates: 429 with Retry-After, 500, hanging until the caller gives up, and
// dropping the connection. Every other call answers after a short delay.
type chaos struct {
	calls                           atomic.Int64
	rateLimited, failed, hung, drop atomic.Int64
}

func (c *chaos) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"message":"bad body","type":"invalid_request_error"}}`)
		return
	}
	n := c.calls.Add(1)
	switch {
	case n%13 == 0:
		c.rateLimited.Add(1)
		w.Header().Set("Retry-After-Ms", "30")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)
		return
	case n%17 == 0:
		c.failed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":{"message":"The server had an error","type":"server_error"}}`)
		return
	case n%97 == 0:
		c.hung.Add(1)
		<-r.Context().Done() // hangs until the deployment's time-out
		return
	case n%89 == 0:
		c.drop.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	select {
	case <-time.After(time.Duration(5+n%10) * time.Millisecond):
	case <-r.Context().Done():
		return
	}
	text := "ok: " + req.Messages[len(req.Messages)-1].Content
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"chatcmpl-%d","object":"chat.completion","created":%d,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}`,
		n, time.Now().Unix(), req.Model, text)
}

var (
	workerUp     = regexp.MustCompile(`"msg":"worker started"`)
	dispatcherUp = regexp.MustCompile(`"msg":"dispatcher started"`)
	workerJoined = regexp.MustCompile(`"msg":"worker joined"`)
)

// faultRun is one fault test's fleet: NATS in the test, llmq processes.
type faultRun struct {
	t        *testing.T
	url      string
	prefix   string
	cfg      string
	nc       *nats.Conn
	mu       sync.Mutex
	answers  map[string][]*nats.Msg
	received chan struct{}
}

func newFaultRun(t *testing.T, provider string) *faultRun {
	srv := brokertest.NewServer(t, brokertest.Options{})
	r := &faultRun{t: t, url: srv.ClientURL(), prefix: brokertest.Subjects(t).Prefix, answers: map[string][]*nats.Msg{}, received: make(chan struct{}, 1)}
	r.cfg = writeConfig(t, fmt.Sprintf(`model_list:
  - model_name: tier1
    litellm_params: {model: openai/chaos-a, api_base: %[1]s/v1, api_key: sk-fault, max_parallel_requests: 8, timeout: 1}
    model_info: {id: t1-a}
  - model_name: tier1
    litellm_params: {model: openai/chaos-b, api_base: %[1]s/v1, api_key: sk-fault, max_parallel_requests: 8, timeout: 1}
    model_info: {id: t1-b}
  - model_name: tier2
    litellm_params: {model: openai/chaos-c, api_base: %[1]s/v1, api_key: sk-fault, max_parallel_requests: 16, timeout: 1}
    model_info: {id: t2-c}
router_settings:
  routing_strategy: least-busy
  num_retries: 5          # a job fails only after six faults in a row, per tier
  allowed_fails: 1000
  cooldown_time: 0.2
  fallbacks: [{tier1: [tier2]}]
llmq_settings:
  prefix: %[2]s
  heartbeat_interval: 200ms
`, provider, r.prefix))
	r.nc = srv.Connect("producer")
	// Answers come to an inbox of the producer's: llmq answers no reply
	// subject inside its own prefix (broker.Subjects.CheckReply).
	sub, err := r.nc.Subscribe("_INBOX."+r.prefix+".>", func(m *nats.Msg) {
		id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		r.mu.Lock()
		r.answers[id] = append(r.answers[id], m)
		r.mu.Unlock()
		select {
		case r.received <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return r
}

func (r *faultRun) dispatcher(name string) *proc {
	p := startProc(r.t, name, "dispatcher", "-c", r.cfg, "--nats", r.url, "--log-format", "json", "--id", name)
	p.awaitLog(r.t, dispatcherUp)
	return p
}

func (r *faultRun) worker(deployment string) *proc {
	p := startProc(r.t, "worker-"+deployment, "worker", "-c", r.cfg, "--deployment", deployment, "--nats", r.url, "--log-format", "json")
	p.awaitLog(r.t, workerUp)
	return p
}

// send publishes job i with its own answer subject, so every answer to it
// is counted.
func (r *faultRun) send(i int, tier string) {
	body := fmt.Sprintf(`{"messages":[{"role":"user","content":"job %d"}]}`, i)
	m := &nats.Msg{Subject: r.prefix + ".jobs." + tier, Reply: fmt.Sprintf("_INBOX.%s.%d", r.prefix, i), Header: nats.Header{
		schema.HeaderContentType: {schema.ContentTypeJSON},
		schema.HeaderTimeout:     {"60000"},
	}, Data: []byte(body)}
	if err := r.nc.PublishMsg(m); err != nil {
		r.t.Errorf("publish job %d: %v", i, err)
	}
}

func (r *faultRun) answered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.answers)
}

// awaitAnswers waits until n distinct jobs have answers.
func (r *faultRun) awaitAnswers(n int, within time.Duration) {
	r.t.Helper()
	deadline := time.After(within)
	for r.answered() < n {
		select {
		case <-r.received:
		case <-deadline:
			r.t.Fatalf("%d of %d jobs answered within %s", r.answered(), n, within)
		}
	}
}

// tally checks every job got exactly one answer and prints the figures.
//
// A worker killed after sending an answer but before its next heartbeat
// (a window of milliseconds) makes its dispatcher run the job again: the
// inbox then sees a second, identical answer, which a NATS request (and
// llmq's client) drops. Such duplicates are counted, must be identical,
// and can only be jobs the killed worker held (maxDup bounds them).
func (r *faultRun) tally(jobs int, ch *chaos, maxDup int) (byTier map[string]int, errs map[string]int) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	byTier, errs = map[string]int{}, map[string]int{}
	retried, fellBack, dups := 0, 0, 0
	for i := range jobs {
		got := r.answers[fmt.Sprint(i)]
		if len(got) == 0 {
			r.t.Errorf("job %d got no answer", i)
			continue
		}
		if len(got) > 1 {
			dups++
			for _, again := range got[1:] {
				if string(answerText(again)) != string(answerText(got[0])) {
					r.t.Errorf("job %d got different answers: %s / %s", i, got[0].Data, again.Data)
				}
			}
		}
		m := got[0]
		if code := m.Header.Get(schema.HeaderErrorCode); code != "" {
			errs[code]++
			continue
		}
		var resp schema.Response
		if err := json.Unmarshal(m.Data, &resp); err != nil || resp.Routing == nil {
			r.t.Errorf("job %d: bad answer %s", i, m.Data)
			continue
		}
		if want := fmt.Sprintf("ok: job %d", i); resp.Text() != want {
			r.t.Errorf("job %d answered %q", i, resp.Text())
		}
		byTier[resp.Routing.Tier]++
		if resp.Routing.Attempts > 1 {
			retried++
		}
		if resp.Routing.Tier == "tier2" {
			fellBack++
		}
	}
	r.t.Logf("fault run: jobs=%d answered=%d successes_by_tier=%v errors=%v retried=%d fell_back=%d duplicate_answers=%d provider: calls=%d 429=%d 500=%d hung=%d dropped=%d",
		jobs, len(r.answers), byTier, errs, retried, fellBack, dups, ch.calls.Load(), ch.rateLimited.Load(), ch.failed.Load(), ch.hung.Load(), ch.drop.Load())
	if dups > maxDup {
		r.t.Errorf("%d jobs answered twice; only jobs the killed worker held (at most %d) may be", dups, maxDup)
	}
	return byTier, errs
}

// answerText is an answer's content, or its error code.
func answerText(m *nats.Msg) string {
	if code := m.Header.Get(schema.HeaderErrorCode); code != "" {
		return "error:" + code
	}
	var resp schema.Response
	_ = json.Unmarshal(m.Data, &resp)
	return resp.Text()
}

// TestFault_WorkersKilledAndProviderFaults_EveryJobAnswered runs a few
// thousand jobs through real llmq processes against a provider that rate
// limits, fails, hangs and drops connections, while a worker is SIGKILLed
// mid-job and a second worker joins. Every job must get an answer (one,
// but for the killed worker's few; see tally); with retries and a fallback
// tier, every one a success.
func TestFault_WorkersKilledAndProviderFaults_EveryJobAnswered(t *testing.T) {
	t.Parallel()
	ch := &chaos{}
	fake := httptest.NewServer(ch)
	t.Cleanup(fake.Close)
	r := newFaultRun(t, fake.URL)
	d := r.dispatcher("d1")
	a1 := r.worker("t1-a")
	r.worker("t1-b")
	r.worker("t2-c")
	for range 3 {
		d.awaitLog(t, workerJoined)
	}
	const jobs = 3000
	for i := range jobs {
		r.send(i, "tier1")
		switch i {
		case 1000:
			r.awaitAnswers(800, wait)
			a1.signal(t, syscall.SIGKILL) // dies holding jobs
			r.worker("t1-a")              // its replacement
		case 2000:
			r.awaitAnswers(1800, wait)
			r.worker("t1-b") // a second worker for t1-b joins under load
		}
	}
	r.awaitAnswers(jobs, 2*time.Minute)
	// Answers that would come twice come within moments; give them a beat.
	time.Sleep(500 * time.Millisecond)   // a bound on absence, not a synchronisation
	byTier, errs := r.tally(jobs, ch, 8) // the killed worker's capacity
	if len(errs) != 0 {
		t.Errorf("jobs failed: %v (retries and the fallback tier should absorb every fault)", errs)
	}
	if byTier["tier1"]+byTier["tier2"] != jobs {
		t.Errorf("successes %v do not add up to %d", byTier, jobs)
	}
	if ch.rateLimited.Load() == 0 || ch.failed.Load() == 0 || ch.hung.Load() == 0 || ch.drop.Load() == 0 {
		t.Errorf("not every fault happened: %+v", ch)
	}
}

// TestFault_RollingRestartOfEveryWorker_FailsNoRequest restarts every
// worker, one at a time with SIGTERM (after its replacement is up), under
// steady load through the Go client.
func TestFault_RollingRestartOfEveryWorker_FailsNoRequest(t *testing.T) {
	t.Parallel()
	fake := httptest.NewServer(&calm{})
	t.Cleanup(fake.Close)
	r := newFaultRun(t, fake.URL)
	d := r.dispatcher("d1")
	workers := map[string]*proc{}
	for _, dep := range []string{"t1-a", "t1-b", "t2-c"} {
		workers[dep] = r.worker(dep)
	}
	for range 3 {
		d.awaitLog(t, workerJoined)
	}
	c := client.New(r.nc, client.Config{Subjects: r.subjects()})
	ctx, cancel := context.WithCancel(context.Background())
	var sent, ok atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				sent.Add(1)
				jctx, jcancel := context.WithTimeout(context.Background(), wait)
				_, err := c.Complete(jctx, "tier1", ask(fmt.Sprintf("g%d-%d", g, i)))
				jcancel()
				if err != nil {
					failures.Store(fmt.Sprintf("g%d-%d", g, i), err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	for _, dep := range []string{"t1-a", "t1-b", "t2-c"} {
		before := ok.Load()
		r.worker(dep) // the replacement first
		workers[dep].signal(t, syscall.SIGTERM)
		if err := workers[dep].wait(t); err != nil {
			t.Errorf("worker %s exited with %v after SIGTERM; log:\n%s", dep, err, workers[dep].stderr.String())
		}
		deadline := time.Now().Add(wait)
		for ok.Load() < before+200 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // polling a counter
		}
	}
	cancel()
	wg.Wait()
	n := 0
	failures.Range(func(k, v any) bool {
		if n < 5 {
			t.Errorf("request %v failed: %v", k, v)
		}
		n++
		return true
	})
	t.Logf("rolling restart: sent=%d ok=%d failed=%d", sent.Load(), ok.Load(), n)
	if ok.Load() < 600 {
		t.Errorf("only %d requests succeeded", ok.Load())
	}
}

// TestFault_DispatcherKilled_ClientGetsEveryAnswer kills one of two
// dispatchers with SIGKILL under load. Jobs it held are lost with it; the
// Go client, told the jobs are safe to repeat (AttemptTimeout), sends those
// again, and every request is answered.
func TestFault_DispatcherKilled_ClientGetsEveryAnswer(t *testing.T) {
	t.Parallel()
	fake := httptest.NewServer(&calm{})
	t.Cleanup(fake.Close)
	r := newFaultRun(t, fake.URL)
	d1 := r.dispatcher("d1")
	d2 := r.dispatcher("d2")
	for _, dep := range []string{"t1-a", "t1-b", "t2-c"} {
		r.worker(dep)
	}
	for range 3 {
		d1.awaitLog(t, workerJoined)
		d2.awaitLog(t, workerJoined)
	}
	c := client.New(r.nc, client.Config{Subjects: r.subjects(), AttemptTimeout: 3 * time.Second})
	const jobs = 1500
	var ok, done atomic.Int64
	errs := make(chan error, jobs)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range jobs {
		if i == jobs/2 {
			d1.signal(t, syscall.SIGKILL)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			resp, err := c.Complete(ctx, "tier1", ask(fmt.Sprintf("job %d", i)))
			done.Add(1)
			switch {
			case err != nil:
				errs <- err
			case resp.Text() != fmt.Sprintf("ok: job %d", i):
				errs <- fmt.Errorf("job %d answered %q", i, resp.Text())
			default:
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("dispatcher killed: jobs=%d ok=%d", jobs, ok.Load())
	if ok.Load() != jobs {
		t.Fatalf("%d of %d answered", ok.Load(), jobs)
	}
}

// calm is a well-behaved OpenAI-compatible fake: a short delay, then the
// answer.
type calm struct{ chaos }

func (c *calm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	n := c.calls.Add(1)
	select {
	case <-time.After(time.Duration(5+n%20) * time.Millisecond):
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"c%d","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
		n, req.Model, "ok: "+req.Messages[len(req.Messages)-1].Content)
}

func (r *faultRun) subjects() broker.Subjects { return broker.Subjects{Prefix: r.prefix} }

func ask(text string) *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}}
}
