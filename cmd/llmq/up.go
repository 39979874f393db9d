package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/examples"
)

func (a *app) upCmd() *cobra.Command {
	var (
		cfgPath, listen, storeDir string
		heartbeat                 time.Duration
		df                        dispatcherFlags
		skipCheck                 bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run an embedded NATS server, a dispatcher and one worker per deployment in one process",
		Long:  "up runs everything in one process. With no -c it runs a demo fleet of simulated tiers, so it works with no keys and no GPU.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var cfg *config.Config
			var err error
			source := cfgPath
			if cfgPath == "" {
				source = "built-in demo (examples/demo.yaml)"
				cfg, err = config.Parse(examples.Demo(), os.LookupEnv)
				if err == nil {
					a.warn(cfg)
				}
			} else {
				cfg, err = a.loadConfig(cfgPath)
			}
			if err != nil {
				return err
			}
			for i := range cfg.ModelList {
				if err := cfg.ModelList[i].Err(); err != nil {
					return fmt.Errorf("deployment %s: %w", &cfg.ModelList[i], err)
				}
			}
			ec := broker.EmbeddedConfig{Listen: listen}
			if storeDir != "" {
				ec.JetStream, ec.StoreDir = true, storeDir
			}
			srv, err := broker.StartEmbedded(ec)
			if err != nil {
				return err
			}
			defer srv.Shutdown()
			a.g.inProcess = srv.InProcess()
			defer func() { a.g.inProcess = nil }()
			nc, err := a.connect(ctx, "llmq-up")
			if err != nil {
				return err
			}
			defer nc.Close()
			subjects := a.subjects(cfg)
			dc := df.dispatcherConfig(cfg)
			dc.Conn, dc.Subjects, dc.Logger = nc, subjects, a.g.logger
			d, err := dispatcher.New(dc)
			if err != nil {
				return err
			}
			if err := d.Start(ctx); err != nil {
				return err
			}
			deps := make([]*config.Deployment, len(cfg.ModelList))
			for i := range cfg.ModelList {
				deps[i] = &cfg.ModelList[i]
			}
			ws, err := startWorkers(ctx, nc, deps, &cfg.RouterSettings, workerOptions{
				subjects: subjects, heartbeat: heartbeatInterval(cfg, heartbeat), skipCheck: skipCheck, logger: a.g.logger,
			})
			if err != nil {
				_ = d.Stop(context.Background())
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			for t := range cfg.Tiers() {
				if err := d.WaitWorkers(wctx, t, 1); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
					a.g.logger.Warn("tier not ready", "tier", t, "err", err)
				}
			}
			cancel()
			a.printReady(srv.ClientURL(), source, cfg, subjects)
			<-ctx.Done()
			a.g.logger.Info("stopping: draining workers")
			sctx, scancel := context.WithTimeout(context.Background(), df.drain)
			defer scancel()
			err = errors.Join(d.Stop(sctx), stopWorkers(sctx, ws, a.g.logger))
			nc.Close()
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "config file (LiteLLM config.yaml shape); default: the built-in demo of simulated tiers")
	f.StringVar(&listen, "listen", "127.0.0.1:4222", "address of the embedded NATS server")
	f.StringVar(&storeDir, "store-dir", "", "enable JetStream in the embedded server, storing here")
	f.DurationVar(&heartbeat, "heartbeat", 0, "heartbeat interval (default llmq_settings.heartbeat_interval, else 1s)")
	f.BoolVar(&skipCheck, "skip-model-check", false, "do not check at start that models are on their Ollama hosts")
	df.bind(cmd)
	return cmd
}

func (a *app) printReady(url, source string, cfg *config.Config, s broker.Subjects) {
	fmt.Fprintf(a.stdout, "llmq is up: NATS at %s, config %s\n", url, source)
	tiers := cfg.Tiers()
	names := make([]string, 0, len(tiers))
	for _, d := range cfg.ModelList {
		if tiers[d.ModelName] {
			names = append(names, d.ModelName)
			delete(tiers, d.ModelName)
		}
	}
	for _, d := range cfg.ModelList {
		fmt.Fprintf(a.stdout, "  %-8s %-36s %s\n", d.ModelName, d.LitellmParams.Model, d.ID)
	}
	first := names[0]
	fmt.Fprintf(a.stdout, "\nSend it a job:\n  llmq complete --tier %s \"write a haiku about queues\"\n", first)
	fmt.Fprintf(a.stdout, "  nats req %s '{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' -H Content-Type:application/json\n", s.Jobs(first))
	fmt.Fprintf(a.stdout, "See the fleet:\n  llmq status\nStop with Ctrl-C.\n")
}
