package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/worker"
)

// modelChecker is the optional start-up check of providers that can tell
// whether their model is there (Ollama's /api/tags).
type modelChecker interface {
	CheckModel(ctx context.Context) error
}

// workerOptions are the knobs the up and worker commands share.
type workerOptions struct {
	subjects    broker.Subjects
	heartbeat   time.Duration
	concurrency int
	skipCheck   bool
	logger      *slog.Logger
	obs         *obs // metrics, when --metrics is on
}

// startWorkers builds and starts one worker per deployment. On error the
// ones already started are stopped.
func startWorkers(ctx context.Context, nc *nats.Conn, deps []*config.Deployment, rs *config.RouterSettings, o workerOptions) ([]*worker.Worker, error) {
	var started []*worker.Worker
	fail := func(err error) ([]*worker.Worker, error) {
		stopWorkers(context.Background(), started, nil)
		return nil, err
	}
	for _, d := range deps {
		wc, err := worker.FromDeployment(d, rs)
		if err != nil {
			return fail(err)
		}
		if o.concurrency > 0 {
			wc.Concurrency = o.concurrency
		}
		if c, ok := wc.Provider.(modelChecker); ok && !o.skipCheck {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.CheckModel(cctx)
			cancel()
			if err != nil {
				return fail(fmt.Errorf("deployment %s: %w", d, err))
			}
		}
		wc.Conn, wc.Subjects, wc.HeartbeatInterval, wc.Logger = nc, o.subjects, o.heartbeat, o.logger
		wc.Observer, wc.Version = o.obs.worker(), version
		w, err := worker.New(wc)
		if err != nil {
			return fail(fmt.Errorf("deployment %s: %w", d, err))
		}
		if err := w.Start(ctx); err != nil {
			return fail(fmt.Errorf("deployment %s: %w", d, err))
		}
		started = append(started, w)
		o.obs.addWorker(w)
	}
	return started, nil
}

// stopWorkers drains the workers, all at once.
func stopWorkers(ctx context.Context, ws []*worker.Worker, log *slog.Logger) error {
	errs := make(chan error, len(ws))
	for _, w := range ws {
		go func() { errs <- w.Stop(ctx) }()
	}
	var all []error
	for range ws {
		if err := <-errs; err != nil {
			all = append(all, err)
			if log != nil {
				log.Warn("worker stop", "err", err)
			}
		}
	}
	return errors.Join(all...)
}
