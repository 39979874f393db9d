package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmq/llmq/client"
)

// MemoryResults are the memory section's: RSS of llmq processes idle and
// with InFlight jobs in flight.
type MemoryResults struct {
	InFlight int         `json:"in_flight"`
	Rows     []MemoryRow `json:"rows"`
}

// MemoryRow is one process in one case.
type MemoryRow struct {
	Process string `json:"process"`
	Case    string `json:"case"`
	// Jobs in flight in the process when Loaded was read.
	Jobs        int     `json:"jobs"`
	IdleBytes   int64   `json:"idle_bytes"`
	LoadedBytes int64   `json:"loaded_bytes"`
	BytesPerJob float64 `json:"bytes_per_job"`
	// Completed counts the jobs that were answered once released; it
	// equals Jobs when the case ran to its end.
	Completed int `json:"completed"`
}

// Memory cases.
const (
	CaseForwarded = "forwarded: jobs held by the worker, tracked by the dispatcher"
	CaseQueued    = "queued: worker full, jobs wait in the dispatcher"
)

const memoryConfig = `model_list:
  - model_name: mem
    litellm_params:
      model: openai/bench
      api_base: %s
      max_parallel_requests: %d
    model_info: {id: mem-openai}
  - model_name: probe
    litellm_params:
      model: sim/probe
      sim: {parallel: 4, tokens: 4}
    model_info: {id: probe-sim}
router_settings:
  routing_strategy: least-busy
  num_retries: 0
llmq_settings:
  max_queue: %d
`

func (r *runner) memory(ctx context.Context) (*MemoryResults, error) {
	res := &MemoryResults{InFlight: r.o.InFlight}
	for _, cs := range []string{CaseForwarded, CaseQueued} {
		rows, err := r.memoryCase(ctx, cs)
		res.Rows = append(res.Rows, rows...)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// memoryCase runs one case in a fresh cluster: NATS, the fake OpenAI
// server holding jobs, a dispatcher and the worker under test (and, for
// the queued case, a probe worker that tells when the dispatcher has read
// every job).
func (r *runner) memoryCase(ctx context.Context, cs string) ([]MemoryRow, error) {
	c, err := r.newCluster()
	if err != nil {
		return nil, err
	}
	defer c.close()
	_, fake, err := c.helper(helperSpec{Kind: "openai"})
	if err != nil {
		return nil, err
	}
	n := r.o.InFlight
	concurrency := n
	if cs == CaseQueued {
		concurrency = 1
	}
	cfg, err := c.file("memory.yaml", fmt.Sprintf(memoryConfig, fake.URL, concurrency, 2*n))
	if err != nil {
		return nil, err
	}
	d, err := c.llmq("llmq dispatcher", "dispatcher", "-c", cfg)
	if err != nil {
		return nil, err
	}
	w, err := c.llmq("llmq worker", "worker", "-c", cfg, "--deployment", "mem-openai")
	if err != nil {
		return nil, err
	}
	if cs == CaseQueued {
		if _, err := c.llmq("llmq probe worker", "worker", "-c", cfg, "--deployment", "probe-sim"); err != nil {
			return nil, err
		}
	}
	nc, err := c.connect("llmq-bench-producer")
	if err != nil {
		return nil, err
	}
	cl := client.New(nc, client.Config{Timeout: 5 * time.Minute, NoResponderRetries: -1})
	plain := benchRequest()
	if err := c.waitReady(ctx, cl, "mem", plain); err != nil {
		return nil, err
	}
	if cs == CaseQueued {
		if err := c.waitReady(ctx, cl, "probe", plain); err != nil {
			return nil, err
		}
	}
	// Warm both processes up with ordinary jobs, then read them idle.
	ClosedLoop(ctx, 16, time.Second, r.o.Timeout, func(ctx context.Context, _ int) error {
		_, err := cl.Complete(ctx, "mem", plain)
		return err
	})
	dIdle, wIdle, err := settledRSS(ctx, d, w)
	if err != nil {
		return nil, err
	}

	held := *plain
	held.User = HoldUser
	var completed atomic.Int64
	var wg sync.WaitGroup
	jctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.Complete(jctx, "mem", &held); err == nil {
				completed.Add(1)
			}
		}()
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	wantHeld := int64(n)
	if cs == CaseQueued {
		wantHeld = 1
	}
	if err := c.until(ctx, 2*time.Minute, func() (bool, error) {
		st, err := openAIStats(hc, fake.URL)
		return st.Held >= wantHeld, err
	}); err != nil {
		return nil, fmt.Errorf("waiting for %d held jobs: %w", wantHeld, err)
	}
	if cs == CaseQueued {
		// The probe goes through the dispatcher's job subscription after
		// every job sent before it: its answer means all are queued.
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err := cl.Complete(pctx, "probe", plain)
		pcancel()
		if err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
	}
	dLoaded, wLoaded, err := settledRSS(ctx, d, w)
	if err != nil {
		return nil, err
	}
	if err := openAIRelease(hc, fake.URL); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
	case <-ctx.Done():
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	row := func(process string, idle, loaded int64, jobs int) MemoryRow {
		return MemoryRow{Process: process, Case: cs, Jobs: jobs, IdleBytes: idle, LoadedBytes: loaded,
			BytesPerJob: float64(loaded-idle) / float64(jobs), Completed: int(completed.Load())}
	}
	rows := []MemoryRow{row("dispatcher", dIdle, dLoaded, n)}
	if cs == CaseForwarded {
		rows = append(rows, row("worker", wIdle, wLoaded, n))
	}
	return rows, nil
}

// settledRSS reads the RSS of two processes once it stops moving: two
// reads 500 ms apart within 1% (at most 10 s).
func settledRSS(ctx context.Context, a, b *proc) (int64, int64, error) {
	var lastA, lastB int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		ra, err := rss(a.Pid())
		if err != nil {
			return 0, 0, err
		}
		rb, err := rss(b.Pid())
		if err != nil {
			return 0, 0, err
		}
		if near(ra, lastA) && near(rb, lastB) || time.Now().After(deadline) {
			return ra, rb, nil
		}
		lastA, lastB = ra, rb
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return 0, 0, errStopped
		}
	}
}

func near(a, b int64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return b > 0 && d*100 <= b
}

// until polls cond every 50 ms until it holds, a process dies, or limit
// passes.
func (c *cluster) until(ctx context.Context, limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if perr := c.check(); perr != nil {
			return perr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %s (last error: %v)", limit, err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return errStopped
		}
	}
}
