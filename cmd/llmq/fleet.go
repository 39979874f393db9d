package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/config/family"
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
	// host, when set, is the slot budget every worker started shares
	// (llmq worker --api-base: one host's deployments); warm makes each
	// load its model before its first beat.
	host *worker.HostBudget
	warm bool
	// inboxes, when set, are the reply subjects of a gateway in this
	// process (worker.Config.Inboxes).
	inboxes *broker.Inboxes
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
		wc.HostBudget, wc.WarmUp, wc.Inboxes = o.host, o.warm, o.inboxes
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

// unsupportedHint ends the error of an up whose config names a provider
// llmq does not serve yet.
const unsupportedHint = "llmq up --skip-unsupported starts the other deployments"

// unsupportedErr returns the error of d when llmq knows its provider but
// does not serve it yet, or does not serve its endpoint (image generation,
// embeddings: worker.Unservable), else nil.
func unsupportedErr(d *config.Deployment) error {
	if err := worker.Unservable(d); err != nil {
		return err
	}
	_, _, _, err := worker.ParseModel(d.LitellmParams.Model)
	if errors.Is(err, family.ErrUnsupported) {
		return err
	}
	return nil
}

// checkConfigSkipping is checkConfig for `llmq up --skip-unsupported`: a
// deployment whose provider llmq does not serve yet is left out with a
// warning, and the problems of a left-out deployment (its unset
// variables, its provider) stop nothing. It returns the deployments to
// run. A config whose every deployment is left out is an error.
func (a *app) checkConfigSkipping(path string) (*config.Config, []*config.Deployment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	r := checkConfigData(path, data, os.LookupEnv, roleUp, "")
	var run []*config.Deployment
	skipped := map[int]bool{}
	if r.cfg != nil {
		for i := range r.cfg.ModelList {
			d := &r.cfg.ModelList[i]
			if err := unsupportedErr(d); err != nil {
				skipped[d.Index()] = true
				a.g.logger.Warn("skipping a deployment llmq cannot serve yet (--skip-unsupported)", "deployment", d.String(), "err", err)
				continue
			}
			run = append(run, d)
		}
	}
	var errs config.Errors
	for _, d := range r.diags {
		switch {
		case d.Severity == config.Warning:
			a.g.logger.Warn("config: " + d.Format(path))
		case !skipped[deploymentIndex(d.Path)]:
			errs = append(errs, d)
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("config %s: %w", path, errs)
	}
	if len(run) == 0 {
		return nil, nil, fmt.Errorf("config %s: no deployment left to run: every one names a provider llmq does not serve yet", path)
	}
	return r.cfg, run, nil
}

// deploymentIndex is i of a diagnostic path "model_list[i]…", or -1.
func deploymentIndex(path string) int {
	rest, ok := strings.CutPrefix(path, "model_list[")
	if !ok {
		return -1
	}
	n, _, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(n)
	if !ok || err != nil {
		return -1
	}
	return i
}
