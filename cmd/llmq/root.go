package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lmittmann/tint"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type globalFlags struct {
	natsURLs               []string
	creds, nkey            string
	user, password, token  string
	tlsCert, tlsKey, tlsCA string
	tlsFirst               bool
	prefix                 string
	logFormat, logLevel    string
	connectTimeout         time.Duration
	pingInterval           time.Duration
	maxPingsOut            int
	inboxPrefix            string
	inProcess              nats.Option // set by `up` for its own components
	logger                 *slog.Logger
	watch                  *connWatch     // a long-running command's lost connection
	exit                   func(code int) // ends the process when a command outlives its connection; default os.Exit
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "llmq",
		Short:         "Run a fleet of LLM backends behind NATS",
		Long:          "llmq turns a LiteLLM-style model_list into a NATS worker pool: producers publish chat-completion jobs per tier,\ndispatchers route them to workers by strategy, workers call the models and reply on the producer's inbox.",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			l, err := a.newLogger()
			if err != nil {
				return err
			}
			a.g.logger = l
			return a.prepareRun(cmd)
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	f := root.PersistentFlags()
	f.StringSliceVar(&a.g.natsURLs, "nats", nil, "NATS server URL(s), comma-separated or repeated (default $NATS_URL, then "+broker.DefaultURL+")")
	f.StringVar(&a.g.creds, "creds", "", "NATS credentials file")
	f.StringVar(&a.g.nkey, "nkey", "", "NATS nkey seed file (default $"+envNKey+")")
	f.StringVar(&a.g.user, "user", "", "NATS user")
	f.StringVar(&a.g.password, "password", "", "NATS password")
	f.StringVar(&a.g.token, "token", "", "NATS token")
	f.StringVar(&a.g.tlsCert, "tlscert", "", "TLS client certificate file")
	f.StringVar(&a.g.tlsKey, "tlskey", "", "TLS client key file")
	f.StringVar(&a.g.tlsCA, "tlsca", "", "TLS CA file to verify the server")
	f.BoolVar(&a.g.tlsFirst, "tlsfirst", false, "TLS handshake before the NATS protocol")
	f.DurationVar(&a.g.connectTimeout, "connect-timeout", 5*time.Second, "time to reach NATS")
	f.DurationVar(&a.g.pingInterval, "ping-interval", time.Second, "how often to ping the NATS server: a server that leaves --max-pings-out pings unanswered is given up for another")
	f.IntVar(&a.g.maxPingsOut, "max-pings-out", 2, "unanswered pings before the connection is taken as dead")
	f.StringVar(&a.g.inboxPrefix, "inbox-prefix", "_INBOX", "prefix of this client's reply subjects; _INBOX.<user> with the permissions llmq auth init writes (default $"+envInboxPrefix+", else _INBOX)")
	f.StringVar(&a.g.prefix, "prefix", "", "subject prefix (default from config llmq_settings.prefix, else \"llm\")")
	f.StringVar(&a.g.logFormat, "log-format", "auto", "log format: auto (tint on a terminal, JSON otherwise), text, json")
	f.StringVar(&a.g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(a.upCmd(), a.dispatcherCmd(), a.workerCmd(), a.completeCmd(), a.embedCmd(), a.statusCmd(), a.batchCmd(), a.batchRunnerCmd(), a.gatewayCmd(), a.topCmd(), a.configCmd(), a.authCmd())
	wrapRuns(root, a.finishRun)
	return root
}

func (a *app) newLogger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", a.g.logLevel)
	}
	format := a.g.logFormat
	if format == "auto" {
		format = "json"
		if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "tint"
		}
	}
	var h slog.Handler
	switch format {
	case "tint":
		h = tint.NewHandler(a.stderr, &tint.Options{Level: level, TimeFormat: time.TimeOnly})
	case "text":
		h = slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})
	case "json":
		h = slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level})
	default:
		return nil, fmt.Errorf("--log-format %q: want auto, text or json", a.g.logFormat)
	}
	return slog.New(h), nil
}

// subjects is the subject layout: --prefix, else the config's, else "llm".
func (a *app) subjects(cfg *config.Config) broker.Subjects {
	if a.g.prefix != "" {
		return broker.Subjects{Prefix: a.g.prefix}
	}
	if cfg != nil && cfg.Settings.Prefix != "" {
		return broker.Subjects{Prefix: cfg.Settings.Prefix}
	}
	return broker.Subjects{}
}

// loadConfig loads path and logs its warnings.
func (a *app) loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	a.warn(cfg)
	return cfg, nil
}

func (a *app) warn(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		a.g.logger.Warn("config: " + w)
	}
}

func heartbeatInterval(cfg *config.Config, flag time.Duration) time.Duration {
	if flag > 0 {
		return flag
	}
	if cfg != nil && cfg.Settings.HeartbeatInterval > 0 {
		return cfg.Settings.HeartbeatInterval.D()
	}
	return time.Second
}

// wrapRuns makes every command's error pass through finish.
func wrapRuns(cmd *cobra.Command, finish func(*cobra.Command, error) error) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error { return finish(cmd, run(cmd, args)) }
	}
	for _, c := range cmd.Commands() {
		wrapRuns(c, finish)
	}
}

func writeLines(w io.Writer, lines ...string) { fmt.Fprintln(w, strings.Join(lines, "\n")) }
