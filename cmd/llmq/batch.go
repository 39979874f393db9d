package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/llmq/llmq/batch"
	"github.com/llmq/llmq/config"
)

// batchFlags are the batch runner's flags on dispatcher, up and
// batch-runner, and the store's on every batch command.
type batchFlags struct {
	off         bool
	replicas    int
	concurrency int
	maxDeliver  int
	ackWait     time.Duration
	jobTimeout  time.Duration
}

func (f *batchFlags) bindStore(cmd *cobra.Command, persistent bool) {
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	fs.IntVar(&f.replicas, "batch-replicas", 0, "replicas of the batch streams llmq creates (1 to 5; a cluster needs that many JetStream servers); when set, existing streams are updated to it (default: 1 for new streams, existing ones unchanged)")
}

func (f *batchFlags) bindRunner(cmd *cobra.Command, optional bool) {
	fs := cmd.Flags()
	if optional {
		fs.BoolVar(&f.off, "no-batch", false, "do not run a batch runner (by default one runs when the NATS server has JetStream)")
	}
	fs.IntVar(&f.concurrency, "batch-concurrency", 0, "batch jobs run at once per tier (default: twice the slots the tier's workers leave to batch jobs, from heartbeats)")
	fs.IntVar(&f.maxDeliver, "batch-max-deliver", 0, "deliveries of a failing batch job before its error is its result (default 10)")
	fs.DurationVar(&f.ackWait, "batch-ack-wait", 0, "time before an unacknowledged batch job goes to another runner (default 30s)")
	fs.DurationVar(&f.jobTimeout, "batch-job-timeout", 0, "deadline of one attempt of a batch job (default 10m)")
	f.bindStore(cmd, false)
}

// startBatchRunner starts a batch runner on nc, unless --no-batch. With
// optional set, a NATS server without JetStream means no runner, not an
// error.
func (a *app) startBatchRunner(ctx context.Context, nc *nats.Conn, cfg *config.Config, f *batchFlags, optional bool) (*batch.Runner, error) {
	if f.off {
		return nil, nil
	}
	r, err := batch.NewRunner(batch.RunnerConfig{
		Conn: nc, Subjects: a.subjects(cfg), Store: batch.StoreConfig{Replicas: f.replicas},
		Concurrency: f.concurrency, MaxDeliver: f.maxDeliver, AckWait: f.ackWait, JobTimeout: f.jobTimeout, Logger: a.g.logger,
	})
	if err != nil {
		return nil, err
	}
	if err := r.Start(ctx); err != nil {
		if optional && errors.Is(err, batch.ErrNoJetStream) {
			a.g.logger.Info("no batch runner: the NATS server has no JetStream")
			return nil, nil
		}
		return nil, err
	}
	return r, nil
}

func stopBatchRunner(ctx context.Context, r *batch.Runner) error {
	if r == nil {
		return nil
	}
	return r.Stop(ctx)
}

func (a *app) batchRunnerCmd() *cobra.Command {
	var (
		f       batchFlags
		cfgPath string
		drain   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "batch-runner",
		Short: "Run batch jobs from JetStream through the dispatchers (dispatcher and up run one too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *config.Config
			if cfgPath != "" {
				var err error
				if cfg, err = a.loadConfig(cfgPath); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			nc, err := a.connect(ctx, "llmq-batch-runner")
			if err != nil {
				return err
			}
			defer nc.Close()
			r, err := a.startBatchRunner(ctx, nc, cfg, &f, false)
			if err != nil {
				return err
			}
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			return r.Stop(sctx)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "config file (for llmq_settings.prefix); optional")
	cmd.Flags().DurationVar(&drain, "drain-timeout", 30*time.Second, "how long a stop waits for running batch jobs")
	f.bindRunner(cmd, false)
	return cmd
}

func (a *app) batchCmd() *cobra.Command {
	var (
		f       batchFlags
		cfgPath string
	)
	cmd := &cobra.Command{
		Use:   "batch",
		Short: "Submit batches of jobs (OpenAI batch JSONL), follow them, get their results",
		Example: `  id=$(llmq batch submit jobs.jsonl)
  llmq batch status $id --watch
  llmq batch results $id > results.jsonl`,
	}
	f.bindStore(cmd, true)
	cmd.PersistentFlags().StringVarP(&cfgPath, "config", "c", "", "config file (for llmq_settings.prefix); optional")
	open := func(ctx context.Context) (*batch.Client, func(), error) {
		var cfg *config.Config
		if cfgPath != "" {
			var err error
			if cfg, err = a.loadConfig(cfgPath); err != nil {
				return nil, nil, err
			}
		}
		nc, err := a.connect(ctx, "llmq-batch")
		if err != nil {
			return nil, nil, err
		}
		c, err := batch.Open(ctx, batch.Config{Conn: nc, Subjects: a.subjects(cfg), Store: batch.StoreConfig{Replicas: f.replicas}})
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return c, nc.Close, nil
	}
	cmd.AddCommand(a.batchSubmitCmd(open), a.batchStatusCmd(open), a.batchResultsCmd(open),
		a.batchCancelCmd(open), a.batchDeleteCmd(open), a.batchListCmd(open))
	return cmd
}

type openFunc func(context.Context) (*batch.Client, func(), error)

// badLine is an input line that was not submitted.
type badLine struct {
	line int
	err  error
}

func (a *app) batchSubmitCmd(open openFunc) *cobra.Command {
	var (
		id    string
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "submit FILE.jsonl",
		Short: "Submit a batch: one OpenAI batch request a line, body.model naming the tier; prints the batch id",
		Long: `submit stores every valid line as a job of the batch and prints the batch id on stdout.
Lines look like {"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"tier1","messages":[...]}}.
Bad lines are reported with their line numbers; the others are submitted. The batch id is a hash of the
file unless --id is given, so submitting the same file again adds nothing and runs nothing twice.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			path := args[0]
			sum, lines, err := hashLines(path)
			if err != nil {
				return err
			}
			if id == "" {
				id = "batch_" + sum[:20]
			}
			if !batch.ValidID(id) {
				return fmt.Errorf("--id %q: %w", id, batch.ErrInvalidID)
			}
			c, closeConn, err := open(ctx)
			if err != nil {
				return err
			}
			defer closeConn()
			file, err := os.Open(path)
			if err != nil {
				return err
			}
			defer file.Close()
			bar := progressbar.NewOptions(lines, progressbar.OptionSetWriter(a.stderr), progressbar.OptionSetVisibility(!quiet),
				progressbar.OptionSetDescription("submitting"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("jobs"), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(a.stderr) }))
			var (
				bad     []badLine
				lineOf  []int // job index → line number
				readErr error
			)
			jobs := func(yield func(batch.Job) bool) {
				r := bufio.NewReaderSize(file, 1<<20)
				for n := 1; ; n++ {
					line, err := r.ReadBytes('\n')
					if len(bytes.TrimSpace(line)) > 0 {
						j, perr := batch.ParseLine(line)
						if perr != nil {
							bad = append(bad, badLine{n, perr})
							_ = bar.Add(1)
						} else {
							lineOf = append(lineOf, n)
							if !yield(j) {
								return
							}
						}
					}
					if err != nil {
						if err != io.EOF {
							readErr = err
						}
						return
					}
				}
			}
			prev := 0
			rep, err := c.Submit(ctx, id, jobs, batch.WithDescription(filepath.Base(path)), batch.WithProgress(func(n int) {
				_ = bar.Add(n - prev)
				prev = n
			}))
			_ = bar.Finish()
			if rep != nil {
				for _, r := range rep.Rejected {
					err := r.Err
					if r.Repeats >= 0 {
						err = fmt.Errorf("custom_id %q is already on line %d", r.CustomID, lineOf[r.Repeats])
					}
					bad = append(bad, badLine{lineOf[r.Index], err})
				}
			}
			if readErr != nil && err == nil {
				err = fmt.Errorf("read %s: %w", path, readErr)
			}
			if err != nil {
				return err
			}
			reportBad(a.stderr, path, bad)
			fmt.Fprintf(a.stderr, "batch %s: %d jobs submitted, %d already there, %d bad lines\n", id, rep.Submitted, rep.Duplicates, len(bad))
			fmt.Fprintln(a.stdout, id)
			if runners, err := c.Runners(ctx); err == nil && len(runners) == 0 {
				fmt.Fprintln(a.stderr, "warning: no batch runner answered: jobs wait until `llmq dispatcher`, `llmq up` or `llmq batch-runner` runs on this NATS")
			}
			if len(bad) > 0 {
				return fmt.Errorf("%d lines of %s were not submitted (see above); the other %d were", len(bad), path, rep.Submitted+rep.Duplicates)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "batch id (1 to 64 letters, digits, - or _); default: batch_ and a hash of the file")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func reportBad(w io.Writer, path string, bad []badLine) {
	const most = 50
	for i, b := range bad {
		if i == most {
			fmt.Fprintf(w, "%s: … and %d more bad lines\n", path, len(bad)-most)
			break
		}
		fmt.Fprintf(w, "%s:%d: %v\n", path, b.line, b.err)
	}
}

// hashLines returns the file's SHA-256 (hex) and its count of non-blank
// lines.
func hashLines(path string) (string, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
	n := 0
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull {
				_, err = r.ReadSlice('\n')
			}
			n++
		} else if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func (a *app) batchStatusCmd(open openFunc) *cobra.Command {
	var (
		watch    bool
		asJSON   bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a batch's progress: pending, running, done, failed, rate, ETA (--watch to follow)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, closeConn, err := open(ctx)
			if err != nil {
				return err
			}
			defer closeConn()
			tty := false
			if f, ok := a.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				tty = true
			}
			var (
				lastN  int
				lastAt time.Time
				rate   float64
			)
			for {
				s, err := c.Status(ctx, args[0])
				if err != nil {
					return err
				}
				now := time.Now()
				switch {
				case !lastAt.IsZero():
					if dt := now.Sub(lastAt).Seconds(); dt > 0 {
						r := float64(s.Finished()-lastN) / dt
						if rate == 0 {
							rate = r
						} else {
							rate = 0.7*rate + 0.3*r
						}
					}
				case s.State == batch.StateInProgress:
					if el := now.Sub(s.CreatedAt).Seconds(); el > 0 {
						rate = float64(s.Finished()) / el
					}
				}
				lastN, lastAt = s.Finished(), now
				if asJSON {
					b, _ := json.Marshal(s)
					fmt.Fprintln(a.stdout, string(b))
				} else if watch && tty {
					fmt.Fprintf(a.stdout, "\r\033[K%s", statusLine(s, rate))
				} else {
					if !watch {
						fmt.Fprintf(a.stdout, "batch %s  created %s", s.ID, s.CreatedAt.Local().Format(time.DateTime))
						if s.Description != "" {
							fmt.Fprintf(a.stdout, "  from %s", s.Description)
						}
						fmt.Fprintln(a.stdout)
					}
					fmt.Fprintln(a.stdout, statusLine(s, rate))
				}
				if !watch || s.State == batch.StateCompleted || s.State == batch.StateCancelled {
					if watch && tty && !asJSON {
						fmt.Fprintln(a.stdout)
					}
					return nil
				}
				select {
				case <-time.After(interval):
				case <-ctx.Done():
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh until the batch is completed or cancelled")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval of --watch")
	return cmd
}

func statusLine(s *batch.Status, rate float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-11s total %d  pending %d  running %d  done %d  failed %d", s.State, s.Total, s.Pending, s.Running, s.Done, s.Failed)
	if s.State == batch.StateInProgress || s.State == batch.StateCancelling {
		fmt.Fprintf(&b, "  rate %.1f/s", rate)
		left := s.Total - s.Finished()
		if rate > 0 && s.State == batch.StateInProgress {
			fmt.Fprintf(&b, "  eta %s", (time.Duration(float64(left) / rate * float64(time.Second))).Round(time.Second))
		}
		if s.Runners == 0 {
			b.WriteString("  (no batch runner answered)")
		}
	}
	return b.String()
}

func (a *app) batchResultsCmd(open openFunc) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "results ID",
		Short: "Write a batch's results as OpenAI batch output JSONL on stdout (--wait for all of them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, closeConn, err := open(ctx)
			if err != nil {
				return err
			}
			defer closeConn()
			w := bufio.NewWriterSize(a.stdout, 1<<16)
			n := 0
			for r, err := range c.Results(ctx, args[0], batch.ResultsOptions{Follow: wait}) {
				if err != nil {
					_ = w.Flush()
					return err
				}
				b, _ := json.Marshal(r)
				_, _ = w.Write(append(b, '\n'))
				n++
			}
			if err := w.Flush(); err != nil {
				return err
			}
			s, err := c.Status(ctx, args[0])
			if err != nil {
				return err
			}
			if left := s.Total - n; left > 0 {
				fmt.Fprintf(a.stderr, "batch %s is %s: %d results written, %d jobs have none yet (--wait waits for them)\n", s.ID, s.State, n, left)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every job has a result (or the batch is cancelled)")
	return cmd
}

func (a *app) batchCancelCmd(open openFunc) *cobra.Command {
	return a.batchIDCmd(open, "cancel ID", "Cancel a batch: jobs not started are not run; running ones finish", "cancelled", (*batch.Client).Cancel)
}

func (a *app) batchDeleteCmd(open openFunc) *cobra.Command {
	return a.batchIDCmd(open, "delete ID", "Delete a batch's jobs, results and record (cancel it first if it runs)", "deleted", (*batch.Client).Delete)
}

// batchIDCmd is a command that does one thing to the batch named by its
// argument and says so.
func (a *app) batchIDCmd(open openFunc, use, short, done string, act func(*batch.Client, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, closeConn, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeConn()
			if err := act(c, cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "batch %s %s\n", args[0], done)
			return nil
		},
	}
}

func (a *app) batchListCmd(open openFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the batches",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, closeConn, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeConn()
			ids, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			for _, id := range ids {
				fmt.Fprintln(a.stdout, id)
			}
			return nil
		},
	}
}
