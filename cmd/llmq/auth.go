package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/auth"
	"github.com/llmq/llmq/config"
)

func (a *app) authCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Permissions: write a nats-server config and one nkey per role, or show the role table",
		Long: "auth gives each kind of llmq client only the NATS subjects it needs (docs/security.md):\n" +
			"a producer may publish jobs and read its own inbox, not beat as a worker, bounce jobs, or read other jobs.",
	}
	cmd.AddCommand(a.authInitCmd(), a.authRolesCmd())
	return cmd
}

func (a *app) authInitCmd() *cobra.Command {
	var (
		out, seedDir, listen, storeDir, cfgPath string
		roles, users                            []string
		noJetStream, force, keep                bool
	)
	cmd := &cobra.Command{
		Use:   "init --out DIR",
		Short: "Write nats-server.conf (users with their roles' permissions) and a seed and env file per user",
		Long: "init writes DIR/nats-server.conf, which admits only the users it names, each with its role's subjects,\n" +
			"and per user DIR/<user>.nk (its nkey seed, mode 0600) and DIR/<user>.env (LLMQ_NKEY, LLMQ_INBOX_PREFIX).\n" +
			"By default there is one user per role, named after it; the dispatcher user also gets the batch runner's\n" +
			"subjects, since llmq dispatcher runs a batch runner unless --no-batch. Each client connects with\n" +
			"--nkey DIR/<user>.nk --inbox-prefix _INBOX.<user> (or the env file's variables).",
		Example: `  llmq auth init --out ./auth --prefix llm
  llmq auth init --out ./auth --roles dispatcher,worker --user alice=producer --user bob=producer
  nats-server -c ./auth/nats-server.conf
  llmq worker -c config.yaml --deployment tier1 --nkey ./auth/worker.nk --inbox-prefix _INBOX.worker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out DIR is required")
			}
			if force && keep {
				return errors.New("--force and --keep: choose one")
			}
			if keep {
				if _, err := os.Stat(filepath.Join(out, auth.ServerConfigFile)); err == nil {
					fmt.Fprintf(a.stdout, "%s exists: kept as it is\n", filepath.Join(out, auth.ServerConfigFile))
					return nil
				}
			}
			var cfg *config.Config
			if cfgPath != "" {
				var err error
				if cfg, err = a.loadConfig(cfgPath); err != nil {
					return err
				}
			}
			us := auth.DefaultUsers(roles)
			for _, s := range users {
				u, err := auth.ParseUser(s)
				if err != nil {
					return err
				}
				us = append(us, u)
			}
			if noJetStream {
				storeDir = ""
			}
			prefix := a.subjects(cfg).Name()
			g, err := auth.Generate(auth.Config{Prefix: prefix, Users: us, Listen: listen, StoreDir: storeDir})
			if err != nil {
				return err
			}
			if _, err := auth.WriteFiles(out, seedDir, g, force); err != nil {
				if !force {
					err = fmt.Errorf("%w (--force replaces, --keep keeps)", err)
				}
				return err
			}
			a.printAuth(out, prefix, g)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory to write into (created 0700)")
	f.StringSliceVar(&roles, "roles", auth.RoleNames(), "roles to make a user for, each named after its role: "+strings.Join(auth.RoleNames(), ", "))
	f.StringArrayVar(&users, "user", nil, "another user, NAME=ROLE[+ROLE...], e.g. alice=producer (repeatable)")
	f.StringVar(&listen, "listen", "0.0.0.0:4222", "the server's client address")
	f.StringVar(&storeDir, "store-dir", "/data", "JetStream store directory of the server (batches need JetStream)")
	f.BoolVar(&noJetStream, "no-jetstream", false, "no JetStream in the server config (no batches)")
	f.StringVar(&seedDir, "seed-dir", "", "where clients find the seeds, written into the env files (default: --out, absolute)")
	f.StringVarP(&cfgPath, "config", "c", "", "config file, for llmq_settings.prefix; optional (else --prefix, else llm)")
	f.BoolVar(&force, "force", false, "replace existing files (new keys: every client needs its new seed)")
	f.BoolVar(&keep, "keep", false, "do nothing if DIR already has a nats-server.conf (for a setup step that runs every time)")
	return cmd
}

// roleCommand is the llmq command a role's user typically runs.
var roleCommand = map[string]string{
	auth.Producer: "complete --tier T \"hi\"", auth.Gateway: "gateway", auth.Dispatcher: "dispatcher -c config.yaml",
	auth.Worker: "worker -c config.yaml --deployment ID", auth.BatchRunner: "batch-runner",
	auth.BatchSubmitter: "batch submit jobs.jsonl", auth.Operator: "status",
}

func (a *app) printAuth(out, prefix string, g *auth.Generated) {
	conf := filepath.Join(out, auth.ServerConfigFile)
	fmt.Fprintf(a.stdout, "Wrote %s (prefix %s) and, per user, a seed (<user>.nk, mode 0600) and an env file (<user>.env).\n", conf, prefix)
	fmt.Fprintf(a.stdout, "Start NATS with it:\n  nats-server -c %s\n", conf)
	fmt.Fprintf(a.stdout, "Give each host only its user's seed; connect as:\n")
	for _, c := range g.Credentials {
		fmt.Fprintf(a.stdout, "  %-16s llmq %s --nkey %s --inbox-prefix %s\n", c.Name, roleCommand[c.Roles[0]],
			filepath.Join(out, auth.SeedFile(c.Name)), auth.Inbox(c.Name))
	}
	fmt.Fprintf(a.stdout, "or: set -a; . %s; set +a  (sets LLMQ_NKEY and LLMQ_INBOX_PREFIX)\n", filepath.Join(out, auth.EnvFile("<user>")))
}

func (a *app) authRolesCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "Print the role table: the subjects each role may publish and subscribe to (Markdown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *config.Config
			if cfgPath != "" {
				var err error
				if cfg, err = a.loadConfig(cfgPath); err != nil {
					return err
				}
			}
			fmt.Fprint(a.stdout, auth.Table(a.subjects(cfg).Name()))
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "config file, for llmq_settings.prefix; optional")
	return cmd
}
