package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/llmq/llmq/broker"
)

// Config configures a Client. Only Conn is required.
type Config struct {
	// Conn is the NATS connection. Required; its server (or cluster) must
	// run JetStream.
	Conn *nats.Conn
	// Subjects lays out subjects. Default prefix "llm".
	Subjects broker.Subjects
	// Store says how missing streams are created (replicas, max age).
	Store StoreConfig
	// RunnerWait is how long Status listens for batch runners to report
	// the jobs they are running. Default 250 ms.
	RunnerWait time.Duration
}

// Client submits batches and reads their status and results. It is safe
// for concurrent use.
type Client struct {
	cfg Config
	nc  *nats.Conn
	st  *store
}

// Errors a Client returns.
var (
	ErrNotFound  = errors.New("batch not found")
	ErrCancelled = errors.New("batch is cancelled")
	ErrInvalidID = errors.New("batch id must be 1 to 64 letters, digits, '-' or '_'")
	// ErrRepeatedCustomID rejects a job whose custom_id an earlier job of
	// the same Submit has.
	ErrRepeatedCustomID = errors.New("custom_id repeated")
)

// Open returns a client, creating the batch streams when missing.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Conn == nil {
		return nil, errors.New("batch: Conn is required")
	}
	if cfg.RunnerWait <= 0 {
		cfg.RunnerWait = 250 * time.Millisecond
	}
	js, err := jetstream.New(cfg.Conn, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	st, err := openStore(ctx, js, newNames(cfg.Subjects), cfg.Store)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, nc: cfg.Conn, st: st}, nil
}

// SubmitOption tunes Submit.
type SubmitOption func(*submitOptions)

type submitOptions struct {
	progress    func(done int)
	description string
}

// WithProgress calls fn with the number of jobs handled so far (stored or
// found already there, or rejected) as the server acknowledges them.
func WithProgress(fn func(done int)) SubmitOption {
	return func(o *submitOptions) { o.progress = fn }
}

// WithDescription records text with the batch when Submit creates it.
func WithDescription(text string) SubmitOption {
	return func(o *submitOptions) { o.description = text }
}

// SubmitReport says what Submit did.
type SubmitReport struct {
	// Submitted counts jobs stored by this call.
	Submitted int
	// Duplicates counts jobs that were already in the batch (an earlier
	// submit of the same job): they are not stored or run again.
	Duplicates int
	// Rejected lists the jobs that are invalid, with the reason; the
	// others were submitted.
	Rejected []Rejection
}

// Rejection is an invalid job: Index is its position in the sequence
// given to Submit, from 0.
type Rejection struct {
	Index    int
	CustomID string
	Err      error
	// Repeats is the index of the earlier job with the same custom_id,
	// or -1.
	Repeats int
}

// Submit adds jobs to batch id, creating the batch if needed. Each job is
// stored once: a job whose custom_id is already in the batch is counted in
// Duplicates and not run again, so running the same Submit twice, or again
// after it was interrupted, is safe. Invalid jobs are reported in Rejected
// and do not stop the others. The error is for jobs that could not be
// stored (NATS unreachable): submit again to add them.
func (c *Client) Submit(ctx context.Context, id string, jobs iter.Seq[Job], opts ...SubmitOption) (*SubmitReport, error) {
	var o submitOptions
	for _, f := range opts {
		f(&o)
	}
	if !ValidID(id) {
		return nil, ErrInvalidID
	}
	meta, _, err := c.getMeta(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		b, _ := json.Marshal(Meta{ID: id, CreatedAt: time.Now().UTC(), Description: o.description})
		if _, err := c.st.meta.Create(ctx, id, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("batch %s: %w", id, err)
		}
	case err != nil:
		return nil, err
	case meta.CancelledAt != nil:
		return nil, fmt.Errorf("batch %s: %w", id, ErrCancelled)
	}

	rep := &SubmitReport{}
	var (
		mu      sync.Mutex
		done    int
		failed  []error
		pending = make(chan submitted, 1024)
		wg      sync.WaitGroup
	)
	progress := func() {
		done++
		if o.progress != nil {
			o.progress(done)
		}
	}
	wg.Go(func() {
		for p := range pending {
			var err error
			select {
			case ack := <-p.fut.Ok():
				mu.Lock()
				if ack.Duplicate {
					rep.Duplicates++
				} else {
					rep.Submitted++
				}
				progress()
				mu.Unlock()
				continue
			case err = <-p.fut.Err():
			}
			dup := isDuplicate(err)
			if !dup {
				// One more try, synchronously, through a NATS blip.
				dup, err = c.publishJob(ctx, p.msg())
			}
			mu.Lock()
			switch {
			case dup:
				rep.Duplicates++
			case err != nil:
				failed = append(failed, err)
			default:
				rep.Submitted++
			}
			progress()
			mu.Unlock()
		}
	})
	seed := maphash.MakeSeed()
	seen := map[uint64]int{}
	i := -1
	for j := range jobs {
		i++
		if err := j.validate(); err != nil {
			mu.Lock()
			rep.Rejected = append(rep.Rejected, Rejection{Index: i, CustomID: j.CustomID, Err: err, Repeats: -1})
			progress()
			mu.Unlock()
			continue
		}
		h := maphash.String(seed, j.CustomID)
		if first, ok := seen[h]; ok {
			mu.Lock()
			rep.Rejected = append(rep.Rejected, Rejection{Index: i, CustomID: j.CustomID, Err: fmt.Errorf("custom_id %q: %w", j.CustomID, ErrRepeatedCustomID), Repeats: first})
			progress()
			mu.Unlock()
			continue
		}
		seen[h] = i
		data, err := json.Marshal(j.Request)
		if err != nil {
			mu.Lock()
			rep.Rejected = append(rep.Rejected, Rejection{Index: i, CustomID: j.CustomID, Err: err, Repeats: -1})
			progress()
			mu.Unlock()
			continue
		}
		s := submitted{subject: c.st.jobSubject(id, j.CustomID, j.Tier), id: id, job: j, data: data}
		fut, err := c.st.js.PublishMsgAsync(s.msg(), jetstream.WithExpectLastSequencePerSubject(0))
		if err != nil {
			close(pending)
			wg.Wait()
			return rep, fmt.Errorf("batch %s: submit: %w", id, err)
		}
		s.fut = fut
		select {
		case pending <- s:
		case <-ctx.Done():
			close(pending)
			wg.Wait()
			return rep, fmt.Errorf("batch %s: submit: %w", id, ctx.Err())
		}
	}
	close(pending)
	wg.Wait()
	if len(failed) > 0 {
		return rep, fmt.Errorf("batch %s: %d jobs not stored (submit again to add them): %w", id, len(failed), failed[0])
	}
	return rep, nil
}

type submitted struct {
	subject, id string
	job         Job
	data        []byte
	fut         jetstream.PubAckFuture
}

func (s submitted) msg() *nats.Msg {
	return &nats.Msg{Subject: s.subject, Data: s.data, Header: nats.Header{
		HeaderBatchID: {s.id}, HeaderCustomID: {s.job.CustomID}, HeaderBatchTier: {s.job.Tier},
		"Content-Type": {"application/json"},
	}}
}

// publishJob stores one job synchronously, trying three times.
func (c *Client) publishJob(ctx context.Context, m *nats.Msg) (dup bool, err error) {
	for try := range 3 {
		if try > 0 {
			select {
			case <-time.After(time.Duration(try) * 500 * time.Millisecond):
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		m.Header.Del(jetstream.ExpectedLastSubjSeqHeader)
		var ack *jetstream.PubAck
		ack, err = c.st.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0))
		if err == nil {
			return ack.Duplicate, nil
		}
		if isDuplicate(err) {
			return true, nil
		}
	}
	return false, err
}

func (c *Client) getMeta(ctx context.Context, id string) (*Meta, uint64, error) {
	return getMeta(ctx, c.st.meta, id)
}

func getMeta(ctx context.Context, kv jetstream.KeyValue, id string) (*Meta, uint64, error) {
	if !ValidID(id) {
		return nil, 0, ErrInvalidID
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("batch %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("batch %s: %w", id, err)
	}
	var m Meta
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return nil, 0, fmt.Errorf("batch %s: metadata: %w", id, err)
	}
	return &m, e.Revision(), nil
}

// Batch states.
const (
	StateInProgress = "in_progress"
	StateCompleted  = "completed"
	StateCancelling = "cancelling"
	StateCancelled  = "cancelled"
)

// Status is a batch's progress.
type Status struct {
	Meta
	// State: in_progress, completed, cancelling (cancelled, jobs still
	// running), cancelled.
	State string `json:"state"`
	// Total jobs submitted; Done answered with a completion, Failed with
	// an error; Running held by batch runners now; Pending the rest,
	// waiting (or never to run, once cancelled).
	Total   int `json:"total"`
	Pending int `json:"pending"`
	Running int `json:"running"`
	Done    int `json:"done"`
	Failed  int `json:"failed"`
	// Runners is how many batch runners answered.
	Runners int `json:"runners"`
}

// Finished counts jobs with a result.
func (s *Status) Finished() int { return s.Done + s.Failed }

// Status returns the progress of batch id. It listens RunnerWait for the
// batch runners' reports of running jobs.
func (c *Client) Status(ctx context.Context, id string) (*Status, error) {
	var meta *Meta
	err := retryTransient(ctx, func() (err error) {
		meta, _, err = c.getMeta(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	s := &Status{Meta: *meta}
	// The runners' reports first, the results after: a runner stores a
	// job's result before it stops counting the job as running, so a job
	// no report counts is either not started or counted in the results
	// read next. The other order could see a job's result missing and the
	// job no longer running, and call a cancelled batch final one result
	// short.
	reports, err := c.runnerReports(ctx)
	if err != nil {
		return nil, err
	}
	if s.Total, err = count(ctx, c.st.jobs, c.st.jobsOfBatch(id)); err != nil {
		return nil, err
	}
	finished, err := count(ctx, c.st.results, c.st.resultsOfBatch(id))
	if err != nil {
		return nil, err
	}
	if s.Failed, err = count(ctx, c.st.results, c.st.failedOfBatch(id)); err != nil {
		return nil, err
	}
	s.Failed = min(s.Failed, finished)
	s.Done = finished - s.Failed
	s.Runners = len(reports)
	for _, r := range reports {
		// A report is any NATS client's say: each within 0…Total.
		s.Running += min(max(r.Running[id], 0), s.Total)
		s.Running = min(s.Running, s.Total)
	}
	// A runner stores a job's result, then (for an error) its failure
	// mark, and only then stops counting the job as running: a batch whose
	// runners still hold a job is not completed yet, or its Done/Failed
	// split could be read between the two writes.
	held := s.Running
	s.Running = min(s.Running, max(0, s.Total-finished))
	s.Pending = max(0, s.Total-finished-s.Running)
	switch {
	case meta.CancelledAt != nil && s.Running > 0:
		s.State = StateCancelling
	case meta.CancelledAt != nil:
		s.State = StateCancelled
	case s.Total > 0 && finished >= s.Total && held == 0:
		s.State = StateCompleted
	default:
		s.State = StateInProgress
	}
	return s, nil
}

// RunnerReport is a batch runner's answer on <prefix>.batch.runners.
type RunnerReport struct {
	ID string `json:"id"`
	// Running counts the jobs it holds, per batch.
	Running map[string]int `json:"running"`
	// Windows is how many jobs it lets run at once, per tier.
	Windows map[string]int `json:"windows"`
	// Completed counts results it stored since it started.
	Completed uint64 `json:"completed"`
	// Workers counts the workers it follows; DroppedBeats the heartbeats
	// it refused (malformed, or over MaxWorkers or MaxTiers);
	// DroppedMessages the job records and status requests it refused
	// (not what Submit and Status send).
	Workers         int    `json:"workers"`
	DroppedBeats    uint64 `json:"dropped_beats"`
	DroppedMessages uint64 `json:"dropped_messages"`
}

// maxRunnerReports bounds the runner reports one status request keeps.
const maxRunnerReports = 1024

// Runners asks the batch runners for their reports, listening RunnerWait.
func (c *Client) Runners(ctx context.Context) ([]RunnerReport, error) { return c.runnerReports(ctx) }

func (c *Client) runnerReports(ctx context.Context) ([]RunnerReport, error) {
	inbox := c.nc.NewInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := c.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, fmt.Errorf("batch: runners: %w", err)
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest(c.st.runners(), inbox, nil); err != nil {
		return nil, fmt.Errorf("batch: runners: %w", err)
	}
	var out []RunnerReport
	t := time.NewTimer(c.cfg.RunnerWait)
	defer t.Stop()
	for {
		select {
		case m := <-ch:
			var r RunnerReport
			// Replies come from any client that saw the request: keep a
			// bounded number of them.
			if len(out) < maxRunnerReports && json.Unmarshal(m.Data, &r) == nil && r.ID != "" {
				out = append(out, r)
			}
		case <-t.C:
			return out, nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

// Cancel stops batch id: jobs not yet started are not run (they get no
// result); jobs running finish and store their results.
func (c *Client) Cancel(ctx context.Context, id string) error {
	for {
		meta, rev, err := c.getMeta(ctx, id)
		if err != nil {
			return err
		}
		if meta.CancelledAt != nil {
			return nil
		}
		now := time.Now().UTC()
		meta.CancelledAt = &now
		b, _ := json.Marshal(meta)
		_, err = c.st.meta.Update(ctx, id, b, rev)
		if err == nil {
			return nil
		}
		if !isDuplicate(err) {
			return fmt.Errorf("batch %s: cancel: %w", id, err)
		}
	}
}

// Delete removes batch id: its jobs, results and metadata. Cancel it first
// if it still runs.
func (c *Client) Delete(ctx context.Context, id string) error {
	if _, _, err := c.getMeta(ctx, id); err != nil {
		return err
	}
	for _, p := range []struct {
		s      jetstream.Stream
		filter string
	}{{c.st.jobs, c.st.jobsOfBatch(id)}, {c.st.results, c.st.resultsOfBatch(id)}, {c.st.results, c.st.failedOfBatch(id)}} {
		if err := p.s.Purge(ctx, jetstream.WithPurgeSubject(p.filter)); err != nil {
			return fmt.Errorf("batch %s: delete: %w", id, err)
		}
	}
	if err := c.st.meta.Purge(ctx, id); err != nil {
		return fmt.Errorf("batch %s: delete: %w", id, err)
	}
	return nil
}

// List returns the ids of the batches llmq knows.
func (c *Client) List(ctx context.Context) ([]string, error) {
	ids, err := c.st.meta.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("batch: list: %w", err)
	}
	return ids, nil
}

// ResultsOptions tune Results.
type ResultsOptions struct {
	// Follow keeps reading until every job of the batch has a result (or
	// the batch is cancelled and nothing runs), instead of stopping at the
	// results stored so far.
	Follow bool
	// Poll is how often Follow checks the batch's status while no result
	// arrives. Default 1 s.
	Poll time.Duration
}

// Results yields the results of batch id, each once, in the order they
// were stored. Iteration stops at the first error, which it yields.
func (c *Client) Results(ctx context.Context, id string, o ResultsOptions) iter.Seq2[*Result, error] {
	return func(yield func(*Result, error) bool) {
		if o.Poll <= 0 {
			o.Poll = time.Second
		}
		if _, _, err := c.getMeta(ctx, id); err != nil {
			yield(nil, err)
			return
		}
		filter := c.st.resultsOfBatch(id)
		n, err := count(ctx, c.st.results, filter)
		if err != nil {
			yield(nil, err)
			return
		}
		if n == 0 && !o.Follow {
			return
		}
		var oc jetstream.Consumer
		err = retryTransient(ctx, func() (err error) {
			oc, err = c.st.results.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
			return err
		})
		if err != nil {
			yield(nil, fmt.Errorf("batch %s: results: %w", id, err))
			return
		}
		seen := 0
		for {
			var mb jetstream.MessageBatch
			err := retryTransient(ctx, func() (err error) {
				mb, err = oc.Fetch(512, jetstream.FetchMaxWait(o.Poll))
				return err
			})
			if err != nil {
				yield(nil, fmt.Errorf("batch %s: results: %w", id, err))
				return
			}
			caughtUp := false
			got := 0
			for m := range mb.Messages() {
				got++
				var r Result
				if err := json.Unmarshal(m.Data(), &r); err != nil {
					if !yield(nil, fmt.Errorf("batch %s: result on %s: %w", id, m.Subject(), err)) {
						return
					}
					continue
				}
				seen++
				if !yield(&r, nil) {
					return
				}
				if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
					caughtUp = true
				}
			}
			if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				yield(nil, fmt.Errorf("batch %s: results: %w", id, err))
				return
			}
			if ctx.Err() != nil {
				yield(nil, ctx.Err())
				return
			}
			if !o.Follow {
				if caughtUp || seen >= n || got == 0 {
					return
				}
				continue
			}
			if got == 0 || caughtUp {
				s, err := c.Status(ctx, id)
				if err != nil {
					yield(nil, err)
					return
				}
				if seen >= s.Finished() && (s.State == StateCompleted || s.State == StateCancelled) {
					return
				}
			}
		}
	}
}
