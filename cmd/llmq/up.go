package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/examples"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/worker"
)

func (a *app) upCmd() *cobra.Command {
	var (
		cfgPath, listen, storeDir string
		heartbeat                 time.Duration
		df                        dispatcherFlags
		bf                        batchFlags
		skipCheck                 bool
		skipUnsupported           bool
		mf                        metricsFlag
		gatewayListen             string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run an embedded NATS server, a dispatcher and one worker per deployment in one process",
		Long:  "up runs everything in one process. With no -c it runs a demo fleet of simulated tiers, so it works with no keys and no GPU.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var cfg *config.Config
			var deps []*config.Deployment // the deployments to run
			var err error
			source := cfgPath
			switch {
			case cfgPath == "":
				source = "built-in demo (examples/demo.yaml)"
				cfg, err = config.Parse(examples.Demo(), os.LookupEnv)
				if err == nil {
					a.warn(cfg)
				}
			case skipUnsupported:
				cfg, deps, err = a.checkConfigSkipping(cfgPath)
			default:
				cfg, err = a.checkConfig(cfgPath, roleUp, "")
				if err != nil && strings.Contains(err.Error(), "not supported by llmq yet") {
					err = fmt.Errorf("%w\n(%s)", err, unsupportedHint)
				}
			}
			if err != nil {
				return err
			}
			if deps == nil {
				for i := range cfg.ModelList {
					deps = append(deps, &cfg.ModelList[i])
				}
			}
			for _, d := range deps {
				if err := d.Err(); err != nil {
					return fmt.Errorf("deployment %s: %w", d, err)
				}
			}
			ec := broker.EmbeddedConfig{Listen: listen}
			if storeDir != "" {
				ec.JetStream, ec.StoreDir = true, storeDir
			} else if !bf.off {
				// Batches need JetStream: without --store-dir, a temporary store.
				if ec.StoreDir, err = os.MkdirTemp("", "llmq-up-"); err != nil {
					return err
				}
				defer os.RemoveAll(ec.StoreDir)
				ec.JetStream = true
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
			o, err := mf.start(ctx, a.g.logger)
			if err != nil {
				return err
			}
			defer func() { _ = o.stop(context.Background()) }()
			dc := df.dispatcherConfig(cfg)
			dc.Conn, dc.Subjects, dc.Logger = nc, subjects, a.g.logger
			dc.Observer, dc.Version = o.dispatcher(), version
			d, err := dispatcher.New(dc)
			if err != nil {
				return err
			}
			if err := d.Start(ctx); err != nil {
				return err
			}
			o.addDispatcher(d)
			br, err := a.startBatchRunner(ctx, nc, cfg, &bf, false)
			if err != nil {
				_ = d.Stop(context.Background())
				return err
			}
			// The gateway's replies from these workers come in process.
			inboxes := &broker.Inboxes{}
			ws, err := startWorkers(ctx, nc, deps, &cfg.RouterSettings, workerOptions{
				subjects: subjects, heartbeat: heartbeatInterval(cfg, heartbeat), skipCheck: skipCheck, logger: a.g.logger, obs: o,
				inboxes: inboxes,
			})
			if err != nil {
				_ = stopBatchRunner(context.Background(), br)
				_ = d.Stop(context.Background())
				return err
			}
			// In one process the dispatcher hands jobs to these workers
			// in process: one NATS crossing less per job.
			for _, w := range ws {
				if err := d.AddLocal(w); err != nil {
					return errors.Join(err, stopBatchRunner(context.Background(), br), d.Stop(context.Background()), stopWorkers(context.Background(), ws, a.g.logger))
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			for t := range tiersOf(deps) {
				if err := d.WaitWorkers(wctx, t, 1); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
					a.g.logger.Warn("tier not ready", "tier", t, "err", err)
				}
			}
			cancel()
			var g *gateway.Gateway
			if gatewayListen != "" {
				if g, err = a.startGateway(ctx, nc, cfg, subjects, gatewayListen, 0, o, d, inboxes); err != nil {
					sctx, scancel := context.WithTimeout(context.Background(), df.drain)
					defer scancel()
					return errors.Join(err, stopBatchRunner(sctx, br), d.Stop(sctx), stopWorkers(sctx, ws, a.g.logger))
				}
			}
			a.printReady(srv.ClientURL(), source, cfg, deps, subjects)
			if g != nil {
				fmt.Fprintf(a.stdout, "OpenAI-compatible gateway: http://%s/v1\n", g.Addr())
			}
			if u := o.url(); u != "" {
				fmt.Fprintf(a.stdout, "Prometheus metrics: %s\n", u)
			}
			if br != nil {
				where := "JetStream store " + ec.StoreDir
				if storeDir == "" {
					where = "a temporary JetStream store, lost at exit; --store-dir DIR keeps batches"
				}
				fmt.Fprintf(a.stdout, "Run a batch (%s):\n  llmq batch submit jobs.jsonl\n", where)
			}
			<-ctx.Done()
			a.g.logger.Info("stopping: draining workers")
			sctx, scancel := context.WithTimeout(context.Background(), df.drain)
			defer scancel()
			var gerr error
			if g != nil {
				gerr = g.Stop(sctx)
			}
			err = errors.Join(gerr, stopBatchRunner(sctx, br), d.Stop(sctx), stopWorkers(sctx, ws, a.g.logger))
			nc.Close()
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "config file (LiteLLM config.yaml shape); default: the built-in demo of simulated tiers")
	f.StringVar(&listen, "listen", "127.0.0.1:4222", "address of the embedded NATS server")
	f.StringVar(&storeDir, "store-dir", "", "JetStream store of the embedded server (default: a temporary directory, removed at exit; none with --no-batch)")
	f.DurationVar(&heartbeat, "heartbeat", 0, "heartbeat interval (default llmq_settings.heartbeat_interval, else 1s)")
	f.BoolVar(&skipCheck, "skip-model-check", false, "do not check at start that models are on their Ollama hosts")
	f.BoolVar(&skipUnsupported, "skip-unsupported", false, "start without the deployments whose provider llmq does not serve yet (bedrock/, vertex_ai/, …), with a warning for each, instead of failing")
	df.bind(cmd)
	bf.bindRunner(cmd, true)
	mf.bind(cmd)
	f.StringVar(&gatewayListen, "gateway", "", "also serve the OpenAI-compatible HTTP gateway on this address, e.g. "+gateway.DefaultListen+" (default: off)")
	return cmd
}

func (a *app) printReady(url, source string, cfg *config.Config, run []*config.Deployment, s broker.Subjects) {
	fmt.Fprintf(a.stdout, "llmq is up: NATS at %s, config %s\n", url, source)
	runs := map[*config.Deployment]bool{}
	var names, embedNames []string
	for _, d := range run {
		runs[d] = true
		if d.ModelInfo.Mode == worker.ModeEmbedding {
			if !slices.Contains(embedNames, d.ModelName) && !broker.IsPattern(d.ModelName) {
				embedNames = append(embedNames, d.ModelName)
			}
			continue
		}
		if !slices.Contains(names, d.ModelName) && !broker.IsPattern(d.ModelName) {
			names = append(names, d.ModelName)
		}
	}
	for _, d := range run {
		if names == nil && broker.IsPattern(d.ModelName) {
			// Only wildcard model_names: ask for a name one matches.
			names = append(names, strings.ReplaceAll(d.ModelName, "*", "MODEL"))
		}
	}
	for i := range cfg.ModelList {
		d := &cfg.ModelList[i]
		note := ""
		if !runs[d] {
			note = "  (skipped: provider not supported yet)"
		}
		fmt.Fprintf(a.stdout, "  %-8s %-36s %s%s\n", d.ModelName, d.LitellmParams.Model, d.ID, note)
	}
	if len(names) == 0 { // embedding tiers only
		fmt.Fprintf(a.stdout, "\nSend it texts to embed:\n  llmq embed --tier %s \"queues are nice\"\n", embedNames[0])
		fmt.Fprintf(a.stdout, "See the fleet:\n  llmq status\nStop with Ctrl-C.\n")
		return
	}
	first := names[0]
	fmt.Fprintf(a.stdout, "\nSend it a job:\n  llmq complete --tier %s \"write a haiku about queues\"\n", first)
	fmt.Fprintf(a.stdout, "  nats req %s '{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' -H Content-Type:application/json\n", s.Jobs(first))
	fmt.Fprintf(a.stdout, "  llmq complete --tier %s --tools examples/tools.json \"what is the weather in Paris?\"\n", first)
	if len(embedNames) > 0 {
		fmt.Fprintf(a.stdout, "  llmq embed --tier %s \"queues are nice\"\n", embedNames[0])
	}
	fmt.Fprintf(a.stdout, "See the fleet:\n  llmq status\nStop with Ctrl-C.\n")
}

// tiersOf is the set of the tiers of deps.
func tiersOf(deps []*config.Deployment) map[string]bool {
	out := map[string]bool{}
	for _, d := range deps {
		out[d.ModelName] = true
	}
	return out
}
