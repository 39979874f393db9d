package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/gateway"
)

func (a *app) gatewayCmd() *cobra.Command {
	var (
		cfgPath, listen string
		timeout, drain  time.Duration
		mf              metricsFlag
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Serve the OpenAI chat-completions API over HTTP, each request a job on NATS",
		Long: "gateway is an OpenAI-compatible HTTP server: POST /v1/chat/completions (\"model\" is the tier; \"stream\": true\n" +
			"answers with server-sent events), GET /v1/models (the tiers). With -c, general_settings.master_key is the\n" +
			"bearer key clients must send, and the config's tiers are listed even before their workers beat.",
		Example: `  llmq gateway -c config.yaml --listen 127.0.0.1:8080
  curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model":"tier1","messages":[{"role":"user","content":"hi"}]}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *config.Config
			if cfgPath != "" {
				var err error
				if cfg, err = a.checkConfig(cfgPath, roleGateway, ""); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			o, err := mf.start(ctx, a.g.logger)
			if err != nil {
				return err
			}
			nc, err := a.connect(ctx, "llmq-gateway")
			if err != nil {
				return errors.Join(err, o.stop(context.Background()))
			}
			defer nc.Close()
			g, err := a.startGateway(ctx, nc, cfg, a.subjects(cfg), listen, timeout, o, nil, nil)
			if err != nil {
				return errors.Join(err, o.stop(context.Background()))
			}
			fmt.Fprintf(a.stdout, "llmq gateway: http://%s/v1 (OpenAI-compatible), jobs on %s\n", g.Addr(), a.subjects(cfg).JobsWildcard())
			if u := o.url(); u != "" {
				fmt.Fprintf(a.stdout, "metrics: %s\n", u)
			}
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			return errors.Join(g.Stop(sctx), o.stop(sctx))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "config file (LiteLLM config.yaml shape): master key, tiers, time-out; optional")
	f.StringVar(&listen, "listen", gateway.DefaultListen, "HTTP address to serve on")
	f.DurationVar(&timeout, "timeout", 0, "deadline of a request's job (default router_settings.timeout, else 600s)")
	f.DurationVar(&drain, "drain-timeout", 30*time.Second, "how long a stop waits for requests in progress")
	mf.bind(cmd)
	return cmd
}

// startGateway starts an HTTP gateway: bearer key from
// general_settings.master_key, tiers and default time-out from cfg (which
// may be nil).
func (a *app) startGateway(ctx context.Context, nc *nats.Conn, cfg *config.Config, s broker.Subjects, listen string, timeout time.Duration, o *obs, local gateway.LocalDispatcher, inboxes *broker.Inboxes) (*gateway.Gateway, error) {
	gc := gateway.Config{Conn: nc, Subjects: s, Listen: listen, Timeout: timeout, Observer: o.gateway(), Version: version, Logger: a.g.logger,
		Dispatcher: local, Inboxes: inboxes}
	if cfg != nil {
		if err := cfg.GeneralSettings.MasterKeyErr(); err != nil {
			return nil, fmt.Errorf("gateway: %w", err) // never serve without the key the file asks for
		}
		if k := cfg.GeneralSettings.MasterKey; k != "" {
			gc.Keys = []string{k}
		}
		for t := range cfg.Tiers() {
			gc.Tiers = append(gc.Tiers, t)
		}
		gc.Aliases = gatewayAliases(cfg)
		if gc.Timeout <= 0 {
			gc.Timeout = cfg.RouterSettings.Timeout.D()
		}
	}
	g, err := gateway.New(gc)
	if err != nil {
		return nil, err
	}
	if err := g.Start(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// gatewayAliases are router_settings.model_group_alias for the gateway.
func gatewayAliases(cfg *config.Config) map[string]gateway.Alias {
	out := make(map[string]gateway.Alias, len(cfg.RouterSettings.ModelGroupAlias))
	for name, a := range cfg.RouterSettings.ModelGroupAlias {
		out[name] = gateway.Alias{Model: a.Model, Hidden: a.Hidden}
	}
	return out
}
