package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/worker"
)

func (a *app) workerCmd() *cobra.Command {
	var (
		cfgPath, deployment, id       string
		tier, model, apiBase, apiKey  string
		concurrency, order, hostSlots int
		weight                        float64
		timeout, heartbeat, drain     time.Duration
		skipCheck, dropParams, warm   bool
		mode                          string
		maxImage                      int64
		mf                            metricsFlag
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Serve one deployment (-c, --deployment), every deployment of one GPU host (-c, --api-base), or one from flags (--tier, --model, ...)",
		Example: `  llmq worker -c config.yaml --deployment tier1-gpu-a
  llmq worker -c config.yaml --api-base http://gpu1:11434 --host-slots 4
  llmq worker --tier tier1 --model ollama/qwen2.5-coder:14b --api-base http://localhost:11434 --concurrency 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *config.Config
			var deps []*config.Deployment
			switch {
			case cfgPath != "" && apiBase != "" && deployment == "":
				// One worker per GPU host: every deployment on it, one
				// slot budget.
				var err error
				if cfg, err = a.checkConfig(cfgPath, roleWorker, ""); err != nil {
					return err
				}
				if deps, err = hostDeployments(cfg, apiBase); err != nil {
					return err
				}
				if hostSlots <= 0 {
					if hostSlots, err = defaultHostSlots(deps, &cfg.RouterSettings, concurrency); err != nil {
						return err
					}
				}
			case cfgPath != "":
				var err error
				if cfg, err = a.checkConfig(cfgPath, roleWorker, deployment); err != nil {
					return err
				}
				if deployment == "" {
					return errors.New("--deployment is required with -c (a model_info.id, or a model_name with one deployment), or --api-base to serve every deployment of one host")
				}
				dep, err := cfg.Deployment(deployment)
				if err != nil {
					return err
				}
				deps = []*config.Deployment{dep}
			case tier != "" && model != "":
				switch mode {
				case "", "chat", worker.ModeEmbedding:
				default:
					return fmt.Errorf("--mode %q: want chat or embedding", mode)
				}
				if maxImage < 0 {
					return fmt.Errorf("--max-image-bytes %d: want 0 (the default, 20 MiB) or more", maxImage)
				}
				d := config.NewDeployment(tier, deployment, config.LitellmParams{
					Model: model, APIBase: apiBase, APIKey: apiKey, MaxParallelRequests: concurrency,
					Weight: weight, Order: order, Timeout: config.Duration(timeout), DropParams: &dropParams,
				}, os.LookupEnv)
				d.ModelInfo.Mode, d.MaxImageBytes = mode, maxImage
				deps = []*config.Deployment{&d}
			default:
				return errors.New("give -c config.yaml --deployment ID, or --tier and --model")
			}
			ctx := cmd.Context()
			nc, err := a.connect(ctx, "llmq-worker")
			if err != nil {
				return err
			}
			defer nc.Close()
			var rs *config.RouterSettings
			if cfg != nil {
				rs = &cfg.RouterSettings
			}
			o, err := mf.start(ctx, a.g.logger)
			if err != nil {
				return err
			}
			defer func() { _ = o.stop(context.Background()) }()
			wo := workerOptions{
				subjects: a.subjects(cfg), heartbeat: heartbeatInterval(cfg, heartbeat),
				concurrency: concurrency, skipCheck: skipCheck, logger: a.g.logger, obs: o, warm: warm,
			}
			if hostSlots > 0 {
				if wo.host, err = worker.NewHostBudget(hostSlots); err != nil {
					return err
				}
				a.g.logger.Info("serving a GPU host", "host", hostKey(apiBase), "deployments", len(deps), "host_slots", hostSlots)
			}
			ws, err := startWorkers(ctx, nc, deps, rs, wo)
			if err != nil {
				return err
			}
			if id != "" {
				a.g.logger.Warn("--id is not used: worker ids are the deployment id plus a random suffix")
			}
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			return stopWorkers(sctx, ws, a.g.logger)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "config file (LiteLLM config.yaml shape)")
	f.StringVar(&deployment, "deployment", "", "deployment to serve: model_info.id (or the model_name of a tier with one deployment); with flags, the id to report")
	f.StringVar(&id, "id", "", "deprecated; ignored")
	_ = f.MarkHidden("id")
	f.StringVar(&tier, "tier", "", "tier (model_name) to serve, without -c")
	f.StringVar(&model, "model", "", "provider/model, e.g. ollama/qwen2.5-coder:14b, without -c")
	f.StringVar(&apiBase, "api-base", "", "provider endpoint, without -c; with -c and no --deployment, the GPU host whose every deployment this worker serves")
	f.StringVar(&apiKey, "api-key", "", "provider key, without -c; prefer os.environ/NAME so the key stays out of process lists")
	f.IntVar(&concurrency, "concurrency", 0, "jobs at once (match the Ollama host's OLLAMA_NUM_PARALLEL); default max_parallel_requests, else the provider's")
	f.Float64Var(&weight, "weight", 0, "simple-shuffle weight, without -c")
	f.IntVar(&order, "order", 0, "LiteLLM order (lower is tried first), without -c")
	f.DurationVar(&timeout, "timeout", 0, "per-call time-out, without -c (default 600s)")
	f.DurationVar(&heartbeat, "heartbeat", 0, "heartbeat interval (default llmq_settings.heartbeat_interval, else 1s)")
	f.DurationVar(&drain, "drain-timeout", 30*time.Second, "how long a stop waits for in-flight jobs")
	f.BoolVar(&skipCheck, "skip-model-check", false, "do not check at start that the model is on the Ollama host")
	f.StringVar(&mode, "mode", "", "chat (default) or embedding (model_info.mode: the worker serves embedding jobs), without -c")
	f.BoolVar(&dropParams, "drop-params", false, "drop request parameters the provider cannot honour instead of refusing the job (drop_params), without -c")
	f.Int64Var(&maxImage, "max-image-bytes", 0, "largest image a job may carry, decoded (default 20 MiB), without -c (with -c: llmq_settings.max_image_bytes)")
	f.IntVar(&hostSlots, "host-slots", 0, "jobs at once on the host across all its deployments (with -c and --api-base; default the largest of their concurrencies); also caps --concurrency's workers without -c")
	f.BoolVar(&warm, "warm", false, "load each model on its host (an empty chat with keep_alive) before taking jobs")
	mf.bind(cmd)
	return cmd
}
