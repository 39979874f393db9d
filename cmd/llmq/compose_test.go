package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

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
		if c, _ := cmd.Flags().GetString("config"); c != "" && !strings.HasPrefix(c, "/etc/llmq/") {
			t.Errorf("service %s: config %s is not the mounted /etc/llmq/config.yaml", name, c)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("checked %d llmq services, want the dispatcher, three workers and the client", checked)
	}
}
