package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llmq/llmq/auth"
	"github.com/llmq/llmq/config"
)

// TestCompose_CommandsMatchCLIFlags keeps docker-compose.yml in step with
// the CLI: every llmq command in it must name a real subcommand and parse
// with that subcommand's flags, and every deployment it names must exist in
// the config it mounts.
func TestCompose_CommandsMatchCLIFlags(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image      string   `yaml:"image"`
			Command    []string `yaml:"command"`
			Entrypoint []string `yaml:"entrypoint"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join("..", "..", "examples", "three-tier.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for name, svc := range compose.Services {
		if svc.Image != "llmq:local" {
			continue
		}
		args := svc.Command
		if len(svc.Entrypoint) > 1 {
			args = append(append([]string{}, svc.Entrypoint[1:]...), args...)
		}
		root := newApp(nil, nil).root()
		cmd, rest, err := root.Find(args)
		if err != nil || cmd == root {
			t.Errorf("service %s: %v does not name an llmq subcommand (%v)", name, args, err)
			continue
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Errorf("service %s: %v: %v", name, args, err)
			continue
		}
		if dep, _ := cmd.Flags().GetString("deployment"); dep != "" {
			if _, err := cfg.Deployment(dep); err != nil {
				t.Errorf("service %s: --deployment %s: %v", name, dep, err)
			}
		}
		if base, _ := cmd.Flags().GetString("api-base"); base != "" && cmd.Name() == "worker" {
			if _, err := hostDeployments(cfg, base); err != nil {
				t.Errorf("service %s: --api-base %s: %v", name, base, err)
			}
		}
		if c, _ := cmd.Flags().GetString("config"); c != "" && !strings.HasPrefix(c, "/etc/llmq/") {
			t.Errorf("service %s: config %s is not the mounted /etc/llmq/config.yaml", name, c)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("checked %d llmq services, want the dispatcher, three workers and the client", checked)
	}
}

// composeFile is the part of docker-compose.yml the tests read.
type composeFile struct {
	Services map[string]struct {
		Image      string   `yaml:"image"`
		Command    []string `yaml:"command"`
		Entrypoint []string `yaml:"entrypoint"`
		Ports      []string `yaml:"ports"`
		Volumes    []string `yaml:"volumes"`
		DependsOn  any      `yaml:"depends_on"`
	} `yaml:"services"`
}

// roleOf is the role each llmq command needs (docs/security.md).
var roleOf = map[string]string{
	"dispatcher": auth.Dispatcher, "worker": auth.Worker, "gateway": auth.Gateway, "batch-runner": auth.BatchRunner,
	"complete": auth.Producer, "status": auth.Operator, "top": auth.Operator, "batch": auth.BatchSubmitter,
}

// TestCompose_NATSRequiresTheGeneratedUsers_EachServiceConnectsAsItsRole:
// NATS starts from the config the auth service generates and publishes no
// port beyond loopback; every llmq service connects with the seed and
// inbox prefix of a user that config has, whose roles cover the command.
func TestCompose_NATSRequiresTheGeneratedUsers_EachServiceConnectsAsItsRole(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose composeFile
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	const authDir = "/etc/llmq/auth"

	// The auth service: which users exist.
	a, ok := compose.Services["auth"]
	if !ok {
		t.Fatal("no auth service")
	}
	root := newApp(nil, nil).root()
	cmd, rest, err := root.Find(a.Command)
	if err != nil || cmd.CommandPath() != "llmq auth init" {
		t.Fatalf("auth service runs %v, want llmq auth init", a.Command)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatal(err)
	}
	if out, _ := cmd.Flags().GetString("out"); out != authDir {
		t.Errorf("auth init --out %s, want %s", out, authDir)
	}
	if keep, _ := cmd.Flags().GetBool("keep"); !keep {
		t.Error("auth init without --keep: every start would fail on the existing files")
	}
	roles, _ := cmd.Flags().GetStringSlice("roles")
	users := map[string][]string{}
	for _, u := range auth.DefaultUsers(roles) {
		users[u.Name] = u.Roles
	}
	extra, _ := cmd.Flags().GetStringArray("user")
	for _, s := range extra {
		u, err := auth.ParseUser(s)
		if err != nil {
			t.Fatal(err)
		}
		users[u.Name] = u.Roles
	}

	// NATS: the generated config, nothing published beyond loopback.
	n := compose.Services["nats"]
	if !slices.Contains(n.Command, authDir+"/"+auth.ServerConfigFile) || !slices.Contains(n.Volumes, "llmq-auth:"+authDir+":ro") {
		t.Errorf("nats does not run from the generated config: command %v, volumes %v", n.Command, n.Volumes)
	}
	for _, p := range n.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("nats publishes %s beyond loopback", p)
		}
	}
	if !strings.Contains(fmt.Sprint(n.DependsOn), "service_completed_successfully") {
		t.Errorf("nats does not wait for the auth service: depends_on %v", n.DependsOn)
	}

	// Every llmq service: its role's seed and inbox prefix.
	for name, svc := range compose.Services {
		if svc.Image != "llmq:local" || name == "auth" {
			continue
		}
		args := svc.Command
		if len(svc.Entrypoint) > 1 {
			args = append(append([]string{}, svc.Entrypoint[1:]...), args...)
		}
		cmd, rest, err := newApp(nil, nil).root().Find(args)
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		nkey, _ := cmd.Flags().GetString("nkey")
		inbox, _ := cmd.Flags().GetString("inbox-prefix")
		user := strings.TrimSuffix(strings.TrimPrefix(nkey, authDir+"/"), ".nk")
		have, ok := users[user]
		if !ok || nkey != authDir+"/"+auth.SeedFile(user) {
			t.Errorf("service %s: --nkey %q is not a generated user's seed (users %v)", name, nkey, users)
			continue
		}
		if inbox != auth.Inbox(user) {
			t.Errorf("service %s: --inbox-prefix %q, want %s for user %s", name, inbox, auth.Inbox(user), user)
		}
		top := cmd
		for top.Parent() != nil && top.Parent().Parent() != nil {
			top = top.Parent()
		}
		if need := roleOf[top.Name()]; !slices.Contains(have, need) {
			t.Errorf("service %s runs %s as %s (%v), which needs role %s", name, top.Name(), user, have, need)
		}
		if !slices.Contains(svc.Volumes, "llmq-auth:"+authDir+":ro") {
			t.Errorf("service %s does not mount the seeds read-only: %v", name, svc.Volumes)
		}
	}
}
