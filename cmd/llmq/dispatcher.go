package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
)

type dispatcherFlags struct {
	config   string
	strategy string
	id       string
	maxQueue int
	timeout  time.Duration
	drain    time.Duration
}

func (f *dispatcherFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.strategy, "strategy", "", "routing strategy (default router_settings.routing_strategy, else simple-shuffle): simple-shuffle, least-busy, latency-based, weighted-shuffle, usage-based, cost-based, shortest-expected-delay (LiteLLM's spellings accepted)")
	cmd.Flags().IntVar(&f.maxQueue, "max-queue", 0, "jobs held per tier waiting for a free worker (default llmq_settings.max_queue, else 10000)")
	cmd.Flags().DurationVar(&f.drain, "drain-timeout", 30*time.Second, "how long a stop waits for in-flight work")
}

// dispatcherConfig builds a dispatcher's config from flags and file.
func (f *dispatcherFlags) dispatcherConfig(cfg *config.Config) dispatcher.Config {
	dc := dispatcher.Config{ID: f.id, Strategy: f.strategy, MaxQueue: f.maxQueue, DefaultTimeout: f.timeout}
	if cfg != nil {
		if dc.Strategy == "" {
			dc.Strategy = cfg.RouterSettings.RoutingStrategy
		}
		if dc.MaxQueue == 0 {
			dc.MaxQueue = cfg.Settings.MaxQueue
		}
		if dc.DefaultTimeout == 0 {
			dc.DefaultTimeout = cfg.RouterSettings.Timeout.D()
		}
		dc.LatencyBuffer = cfg.RouterSettings.RoutingStrategyArgs.LowestLatencyBuffer
		dc.Policy = policy(&cfg.RouterSettings)
		routerFeatures(&dc, cfg)
		for t := range cfg.Tiers() {
			dc.Tiers = append(dc.Tiers, t)
		}
		dc.Aliases = cfg.Aliases()
		dc.Affinity = cfg.RouterSettings.ConversationAffinity
	}
	return dc
}

func (a *app) dispatcherCmd() *cobra.Command {
	var f dispatcherFlags
	var bf batchFlags
	var mf metricsFlag
	cmd := &cobra.Command{
		Use:   "dispatcher",
		Short: "Route jobs to workers (run one or more, against NATS)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *config.Config
			if f.config != "" {
				var err error
				if cfg, err = a.checkConfig(f.config, roleDispatcher, ""); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			nc, err := a.connect(ctx, "llmq-dispatcher")
			if err != nil {
				return err
			}
			defer nc.Close()
			o, err := mf.start(ctx, a.g.logger)
			if err != nil {
				return err
			}
			defer func() { _ = o.stop(context.Background()) }()
			dc := f.dispatcherConfig(cfg)
			dc.Conn, dc.Subjects, dc.Logger = nc, a.subjects(cfg), a.g.logger
			dc.Observer, dc.Version = o.dispatcher(), version
			d, err := dispatcher.New(dc)
			if err != nil {
				return err
			}
			if err := d.Start(ctx); err != nil {
				return err
			}
			o.addDispatcher(d)
			br, err := a.startBatchRunner(ctx, nc, cfg, &bf, true)
			if err != nil {
				_ = d.Stop(context.Background())
				return err
			}
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), f.drain)
			defer cancel()
			return errors.Join(stopBatchRunner(sctx, br), d.Stop(sctx))
		},
	}
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "config file (LiteLLM config.yaml shape); optional: without it tiers are learned from heartbeats")
	cmd.Flags().StringVar(&f.id, "id", "", "dispatcher id (default random)")
	cmd.Flags().DurationVar(&f.timeout, "default-timeout", 0, "deadline of jobs that bring none (default router_settings.timeout, else 600s)")
	f.bind(cmd)
	bf.bindRunner(cmd, true)
	mf.bind(cmd)
	return cmd
}

// DefaultNumRetries applies when router_settings.num_retries is unset.
const DefaultNumRetries = 2

// policy maps LiteLLM's router settings to a dispatcher's failure policy.
func policy(rs *config.RouterSettings) dispatcher.Policy {
	p := dispatcher.Policy{
		NumRetries:             DefaultNumRetries,
		RetryPolicy:            dispatcher.RetryPolicyFromLiteLLM(rs.RetryPolicy),
		RetryAfter:             rs.RetryAfter.D(),
		Fallbacks:              dispatcher.FallbackMap(rs.Fallbacks),
		ContextWindowFallbacks: dispatcher.FallbackMap(rs.ContextWindowFallbacks),
		ContentPolicyFallbacks: dispatcher.FallbackMap(rs.ContentPolicyFallbacks),
		DefaultFallbacks:       rs.DefaultFallbacks,
	}
	if rs.NumRetries != nil {
		p.NumRetries = *rs.NumRetries
	}
	if rs.MaxFallbacks != nil {
		p.MaxFallbacks = *rs.MaxFallbacks
	}
	return p
}
