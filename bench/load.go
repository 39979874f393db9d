package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// Call is one request of a load run, numbered i from 0. It returns nil on
// success.
type Call func(ctx context.Context, i int) error

// LoadResult is what a load run saw. Sent = OK + Failed, and the counts in
// Errors add up to Failed.
type LoadResult struct {
	Sent   int            `json:"sent"`
	OK     int            `json:"ok"`
	Failed int            `json:"failed"`
	Errors map[string]int `json:"errors,omitempty"`
	// Seconds from the first call to the last answer; Rate is OK calls
	// per second over it.
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	// Latency of the successful calls, from the moment each call started
	// to its answer.
	Latency Summary `json:"latency"`
	// Lag (open loop only) is how late each call started against its
	// schedule: the load generator's own delay, which the run reports so a
	// late generator cannot hide.
	Lag Summary `json:"lag,omitempty"`

	lat, lag []time.Duration // raw samples, for Merge
}

// Fixed is the schedule of rate calls a second for d, evenly spaced.
func Fixed(rate float64, d time.Duration) []time.Duration {
	n := int(rate * d.Seconds())
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(float64(i) / rate * float64(time.Second))
	}
	return out
}

// Poisson is the schedule of a Poisson process of rate calls a second for
// d: exponential gaps, repeatable from seed.
func Poisson(rate float64, d time.Duration, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var out []time.Duration
	t := 0.0
	for {
		t += rng.ExpFloat64() / rate
		at := time.Duration(t * float64(time.Second))
		if at >= d {
			return out
		}
		out = append(out, at)
	}
}

// OpenLoop starts call i at schedule[i] from now, without waiting for
// earlier calls to answer: a slow system does not slow the load. Each call
// gets timeout. The pacer sleeps between due times and starts every call
// that is due when it wakes (the runtime's timers are ~1 ms coarse, so
// calls leave in small bursts at high rates); Lag reports how late they
// left. Calls run on a pool of goroutines that grows whenever none is
// idle, so the pacer never waits and goroutines keep their grown stacks
// between calls. Latency is measured from each call's start. A cancelled
// ctx stops the schedule; calls already started finish.
func OpenLoop(ctx context.Context, schedule []time.Duration, timeout time.Duration, call Call) LoadResult {
	n := len(schedule)
	lat := make([]time.Duration, n)
	lag := make([]time.Duration, n)
	errs := make([]error, n)
	type item struct {
		i   int
		due time.Time
	}
	run := func(it item) {
		began := time.Now()
		lag[it.i] = began.Sub(it.due)
		cctx, cancel := context.WithTimeout(ctx, timeout)
		errs[it.i] = call(cctx, it.i)
		cancel()
		lat[it.i] = time.Since(began)
	}
	work := make(chan item)
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sent := 0
	for i, off := range schedule {
		due := start.Add(off)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		sent++
		select {
		case work <- item{i, due}: // an idle goroutine took it
		default:
			wg.Add(1)
			go func(first item) {
				defer wg.Done()
				run(first)
				for it := range work {
					run(it)
				}
			}(item{i, due})
		}
	}
	close(work)
	wg.Wait()
	r := tally(lat[:sent], errs[:sent], time.Since(start))
	r.lag = lag[:sent]
	r.Lag = Summarize(r.lag)
	return r
}

// Merge combines runs of the same load into one result, as if one run:
// counts and seconds add up, distributions are of all samples.
func Merge(runs ...LoadResult) LoadResult {
	var m LoadResult
	for _, r := range runs {
		m.Sent += r.Sent
		m.OK += r.OK
		m.Failed += r.Failed
		m.Seconds += r.Seconds
		for k, v := range r.Errors {
			if m.Errors == nil {
				m.Errors = map[string]int{}
			}
			m.Errors[k] += v
		}
		m.lat = append(m.lat, r.lat...)
		m.lag = append(m.lag, r.lag...)
	}
	m.Latency = Summarize(m.lat)
	m.Lag = Summarize(m.lag)
	if m.Seconds > 0 {
		m.Rate = float64(m.OK) / m.Seconds
	}
	return m
}

// ClosedLoop runs concurrency loops, each starting a call as soon as its
// previous one answered, for d. Each call gets timeout.
func ClosedLoop(ctx context.Context, concurrency int, d, timeout time.Duration, call Call) LoadResult {
	return closedLoop(ctx, concurrency, d, timeout, func(ctx context.Context, _, i int) error { return call(ctx, i) })
}

// tally counts outcomes and summarizes the latencies of successful calls.
func tally(lat []time.Duration, errs []error, elapsed time.Duration) LoadResult {
	r := LoadResult{Sent: len(lat), Seconds: elapsed.Seconds()}
	ok := make([]time.Duration, 0, len(lat))
	for i, err := range errs {
		if err == nil {
			ok = append(ok, lat[i])
			continue
		}
		if r.Errors == nil {
			r.Errors = map[string]int{}
		}
		r.Errors[ErrorCode(err)]++
	}
	r.OK, r.Failed = len(ok), len(lat)-len(ok)
	r.Latency = Summarize(ok)
	r.lat = ok
	if r.Seconds > 0 {
		r.Rate = float64(r.OK) / r.Seconds
	}
	return r
}

// ErrorCode names a call's failure: the llmq error code when there is one,
// "http_NNN" for an HTTP status, else "timeout", "no_responders" or
// "error".
func ErrorCode(err error) string {
	var e *schema.Error
	var se *StatusError
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.As(err, &se):
		return "http_" + strconv.Itoa(se.Status)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "timeout"
	case errors.Is(err, nats.ErrNoResponders):
		return "no_responders"
	}
	return "error"
}
