package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/metrics"
	"github.com/llmq/llmq/worker"
)

// metricsFlag is --metrics, on every long-running command.
type metricsFlag struct{ listen string }

func (f *metricsFlag) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.listen, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. "+metrics.DefaultListen+" (default: off)")
}

// obs is the metrics of one process; a nil *obs (no --metrics) observes
// nothing.
type obs struct {
	m   *metrics.Metrics
	srv *metrics.Server
}

// start serves the metrics when --metrics was given.
func (f *metricsFlag) start(ctx context.Context, log *slog.Logger) (*obs, error) {
	if f.listen == "" {
		return nil, nil
	}
	m := metrics.New(metrics.Config{})
	srv := metrics.NewServer(metrics.ServerConfig{Listen: f.listen, Metrics: m, Logger: log})
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	return &obs{m: m, srv: srv}, nil
}

// url is where the metrics are served, or "".
func (o *obs) url() string {
	if o == nil {
		return ""
	}
	return "http://" + o.srv.Addr() + "/metrics"
}

func (o *obs) dispatcher() dispatcher.Observer {
	if o == nil {
		return nil
	}
	return o.m.Dispatcher()
}

func (o *obs) worker() worker.Observer {
	if o == nil {
		return nil
	}
	return o.m.Worker()
}

func (o *obs) gateway() gateway.Observer {
	if o == nil {
		return nil
	}
	return o.m.Gateway()
}

func (o *obs) addDispatcher(d *dispatcher.Dispatcher) {
	if o != nil {
		o.m.AddDispatcher(d)
	}
}

func (o *obs) addWorker(w *worker.Worker) {
	if o != nil {
		o.m.AddWorker(w)
	}
}

func (o *obs) stop(ctx context.Context) error {
	if o == nil {
		return nil
	}
	if err := o.srv.Stop(ctx); err != nil {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}
