package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// Roles a configuration is checked for: what stops a process depends on
// what it runs.
const (
	// roleUp runs every deployment: one it cannot serve is an error.
	roleUp = "up"
	// roleWorker runs one deployment (--deployment): only its problems are
	// errors.
	roleWorker = "worker"
	// roleDispatcher runs no deployment: none of their problems stops it.
	roleDispatcher = "dispatcher"
	// roleGateway runs no deployment, and needs general_settings.master_key
	// when the file names one.
	roleGateway = "gateway"
)

var checkRoles = []string{roleUp, roleWorker, roleDispatcher, roleGateway}

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with configuration files",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(a.configCheckCmd())
	return cmd
}

func (a *app) configCheckCmd() *cobra.Command {
	var path, role, deployment string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Report every error and warning of a config file, and which deployments this process could serve",
		Long: "check reads a LiteLLM-style config.yaml as llmq up, dispatcher, worker and gateway do at start, and prints\n" +
			"every error and warning at once, each with file:line and YAML path: unknown keys, keys llmq does not act on,\n" +
			"os.environ/ variables that are not set, deployments it cannot serve (provider, missing key, ...) and why.\n" +
			"Variables are read from this process's environment; no value is ever printed. The exit status is 2 when\n" +
			"there are errors for the process named by --for (default up: every deployment must be servable).",
		Example: `  llmq config check -c config.yaml
  llmq config check -c config.yaml --for worker --deployment tier1-gpu-a
  llmq config check -c config.yaml --for dispatcher`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(checkRoles, role) {
				return fmt.Errorf("--for %q: want one of %s", role, strings.Join(checkRoles, ", "))
			}
			if role == roleWorker && deployment == "" {
				return errors.New("--for worker needs --deployment (a model_info.id, or a model_name with one deployment)")
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("config: %w", err)
			}
			r := checkConfigData(filepath.Base(path), data, os.LookupEnv, role, deployment)
			r.print(a.stdout)
			if errs := r.errors(); len(errs) > 0 {
				return fmt.Errorf("config %s: %d error(s) for %s", path, len(errs), role)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&path, "config", "c", "", "config file (LiteLLM config.yaml shape)")
	_ = cmd.MarkFlagRequired("config")
	f.StringVar(&role, "for", roleUp, "the process to check for: "+strings.Join(checkRoles, ", "))
	f.StringVar(&deployment, "deployment", "", "with --for worker: the deployment it serves")
	return cmd
}

// checkConfig is what up, dispatcher, worker and gateway run at start: the
// same check as `llmq config check`, warnings logged, errors returned all
// at once (wrapping config.Errors).
func (a *app) checkConfig(path, role, deployment string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	r := checkConfigData(path, data, os.LookupEnv, role, deployment)
	for _, d := range r.diags {
		if d.Severity == config.Warning {
			a.g.logger.Warn("config: " + d.Format(path))
		}
	}
	if errs := r.errors(); len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %w", path, errs)
	}
	return r.cfg, nil
}

// checkReport is the outcome of a check.
type checkReport struct {
	file, role string
	cfg        *config.Config
	diags      []config.Diagnostic
	deps       []depStatus
}

// depStatus says whether a deployment can be served here, and whether the
// process checked for runs it.
type depStatus struct {
	d    *config.Deployment
	why  []config.Diagnostic // empty: it can be served
	runs bool
}

// checkConfigData checks data (named file in messages) for role, with
// os.environ/ variables from lookup.
func checkConfigData(file string, data []byte, lookup func(string) (string, bool), role, deployment string) *checkReport {
	cfg, ds := config.Check(data, lookup)
	r := &checkReport{file: file, role: role, cfg: cfg, diags: ds}
	if cfg == nil {
		return r
	}
	var selected *config.Deployment
	if role == roleWorker && deployment != "" {
		selected, _ = cfg.Deployment(deployment) // not found: the worker command says so
	}
	for i := range cfg.ModelList {
		d := &cfg.ModelList[i]
		s := depStatus{d: d, why: serveProblems(d, &cfg.RouterSettings, lookup)}
		s.runs = role == roleUp || d == selected
		r.deps = append(r.deps, s)
		if s.runs {
			for _, p := range s.why {
				p.Severity = config.Error
				p.Msg = fmt.Sprintf("%s cannot be served: %s", d.ModelName, p.Msg)
				r.diags = append(r.diags, p)
			}
		}
	}
	if role == roleGateway {
		if err := cfg.GeneralSettings.MasterKeyErr(); err != nil {
			for i, d := range r.diags {
				if d.Path == "general_settings.master_key" && d.Severity == config.Warning {
					r.diags[i].Severity = config.Error
				}
			}
		}
	}
	config.SortDiagnostics(r.diags)
	return r
}

// serveProblems says why a worker in this environment could not serve d:
// its os.environ/ variables, its model_name, its provider (the worker's
// own start-up validation, without network).
func serveProblems(d *config.Deployment, rs *config.RouterSettings, lookup func(string) (string, bool)) []config.Diagnostic {
	out := d.Problems()
	at := config.Diagnostic{Severity: config.Error, Line: d.Line(), Path: fmt.Sprintf("model_list[%d]", d.Index())}
	add := func(format string, args ...any) {
		p := at
		p.Msg = fmt.Sprintf(format, args...)
		out = append(out, p)
	}
	// A wildcard model_name ("openai/*", "*") is a pattern jobs' names are
	// matched against (docs/protocol.md §2.1); "_" is an error of the file.
	switch {
	case strings.ContainsAny(d.ModelName, " \t\r\n"):
		add("model_name %q holds white space, which a NATS subject cannot", d.ModelName)
	case d.ModelName != broker.AnyModel && !broker.ValidGroup(d.ModelName):
		add("model_name %q is not a tier name or wildcard pattern: it must not hold >, start or end with a dot or have two in a row, nor be over %d bytes", d.ModelName, broker.MaxTierLen)
	}
	if len(out) > 0 {
		// The worker's validation stops at the first of these; the
		// provider is still worth knowing about.
		if m := d.LitellmParams.Model; m != "" {
			if _, _, _, err := worker.ParseModel(m); err != nil {
				add("%s", errText(err))
			}
		}
		return out
	}
	if _, err := worker.FromDeployment(d, rs); err != nil {
		msg := strings.TrimPrefix(errText(err), "deployment "+d.String()+": ")
		if d.LitellmParams.APIKey == "" && len(d.KeyVars()) > 0 && !strings.Contains(msg, d.KeyVars()[0]) {
			if _, set := firstSetVar(d.KeyVars(), lookup); !set {
				msg += fmt.Sprintf(" (no api_key in the config, and %s is not set)", strings.Join(d.KeyVars(), " / "))
			}
		}
		add("%s", msg)
	}
	return out
}

// errText is err's message, without the "llmq <code> (<status>): " of a
// job error (an adapter's validation uses them).
func errText(err error) string {
	msg := err.Error()
	var e *schema.Error
	if errors.As(err, &e) {
		msg = strings.Replace(msg, e.Error(), e.Message, 1)
	}
	return msg
}

func firstSetVar(names []string, lookup func(string) (string, bool)) (string, bool) {
	for _, n := range names {
		if _, ok := lookup(n); ok {
			return n, true
		}
	}
	return "", false
}

func (r *checkReport) errors() config.Errors {
	var out config.Errors
	for _, d := range r.diags {
		if d.Severity == config.Error {
			out = append(out, d)
		}
	}
	return out
}

// print writes the report: diagnostics in line order, then the
// deployments, then a summary.
func (r *checkReport) print(w io.Writer) {
	nerr, nwarn := 0, 0
	for _, d := range r.diags {
		fmt.Fprintln(w, d.Format(r.file))
		if d.Severity == config.Error {
			nerr++
		} else {
			nwarn++
		}
	}
	if r.cfg != nil {
		ok := 0
		for _, s := range r.deps {
			if len(s.why) == 0 {
				ok++
			}
		}
		if len(r.diags) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "deployments: %d of %d can be served here (%s)\n", ok, len(r.deps), r.serving())
		for _, s := range r.deps {
			d := s.d
			state, note := "serve ", ""
			if len(s.why) > 0 {
				state = "cannot"
				note = fmt.Sprintf("  (line %d)", s.why[0].Line)
			} else if d.KeyEnv != "" {
				note = "  (api_key from " + d.KeyEnv + ")"
			}
			mark := " "
			if s.runs {
				mark = "*"
			}
			fmt.Fprintf(w, " %s%s  %-28s %-44s %s%s\n", mark, state, d.ModelName, d.LitellmParams.Model, d.ID, note)
		}
	}
	fmt.Fprintf(w, "%s: %d error(s), %d warning(s) for %s\n", r.file, nerr, nwarn, r.role)
}

// serving says which deployments the process checked for runs (marked *).
func (r *checkReport) serving() string {
	switch r.role {
	case roleUp:
		return "llmq up runs all of them: *"
	case roleWorker:
		return "this worker runs the one marked *"
	}
	return "a " + r.role + " runs none of them"
}
