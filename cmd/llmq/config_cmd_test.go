package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite config/testdata/litellm/*.golden from `llmq config check`'s output")

// corpusDir holds real LiteLLM configs, each with its source in a header
// comment, and the golden output of the check for each.
const corpusDir = "../../config/testdata/litellm"

// dummySecret marks every key-like value the dummy environment hands out:
// no output may contain it.
const dummySecret = "SECRET-dummy-"

// dummyEnv is the environment of a user who set every variable the file
// names, and the usual key variable of every provider (OPENAI_API_KEY,
// ...), with values of the shape the names suggest (a model, a URL, a
// port, a version; anything else gets a key).
func dummyEnv(data []byte) func(string) (string, bool) {
	named := map[string]bool{}
	for _, m := range envRefRE.FindAllSubmatch(data, -1) {
		named[string(m[1])] = true
	}
	return func(name string) (string, bool) {
		u := strings.ToUpper(name)
		if !named[name] && !strings.HasSuffix(u, "_KEY") && !strings.HasSuffix(u, "_TOKEN") {
			return "", false // e.g. OLLAMA_API_BASE: not set unless the file names it
		}
		switch {
		case strings.Contains(u, "MODEL"):
			return "openai/dummy-model", true
		case strings.Contains(u, "OLLAMA") && (strings.Contains(u, "URL") || strings.Contains(u, "BASE")):
			return "http://dummy.invalid:11434", true
		case strings.Contains(u, "BASE"), strings.Contains(u, "URL"), strings.Contains(u, "ENDPOINT"), strings.Contains(u, "HOST"):
			return "http://dummy.invalid:8080/v1", true
		case strings.Contains(u, "PORT"):
			return "6379", true
		case strings.Contains(u, "VERSION"):
			return "2024-06-01", true
		}
		return dummySecret + name, true
	}
}

var envRefRE = regexp.MustCompile(`os\.environ/([A-Za-z0-9_]+)`)

func noVars(string) (string, bool) { return "", false }

// TestConfigCheck_LiteLLMCorpus_MatchesGolden runs the check on every
// collected config twice, with every variable set (dummy values) and with
// none, and compares with NAME.golden (go test -run ConfigCheck_LiteLLM
// -update rewrites them).
func TestConfigCheck_LiteLLMCorpus_MatchesGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("the corpus has %d configs, want at least 20", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("# Source: ")) {
				t.Errorf("%s has no \"# Source: repository, path, commit\" header", name)
			}
			var b bytes.Buffer
			fmt.Fprintln(&b, "== llmq config check, every variable the file names and every provider key variable set (dummy values)")
			checkConfigData(name, data, dummyEnv(data), roleUp, "").print(&b)
			fmt.Fprintln(&b, "\n== llmq config check, no variable set")
			checkConfigData(name, data, noVars, roleUp, "").print(&b)
			got := b.Bytes()
			if bytes.Contains(got, []byte(dummySecret)) {
				t.Errorf("the output shows a value from the environment:\n%s", got)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *updateGolden {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", filepath.Base(golden), got, want)
			}
		})
	}
}

// runConfigCheck runs `llmq config check` on src.
func runConfigCheck(t *testing.T, src string, args ...string) (stdout string, err error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := newApp(&out, &errOut).root()
	cmd.SetArgs(append([]string{"config", "check", "-c", path, "--log-format", "text"}, args...))
	err = cmd.Execute()
	return out.String(), err
}

const secretKey = "sk-llmq-CONFIGCHECK-5e1f0a9d"

func TestConfigCheck_ReportsEveryProblemAtOnceWithLineAndPath(t *testing.T) {
	t.Parallel()
	out, err := runConfigCheck(t, `model_list:
  - model_name: tier1
    litellm_params:
      model: ollama/llama3
      api_base: http://localhost:11434
      region_name: eu
  - model_name: tier2
    litellm_params:
      model: azure-ish/gpt-4o
      api_key: `+secretKey+`
  - model_name: tier3
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/LLMQ_TEST_SURELY_UNSET_CONFIGCHECK
router_settings:
  routing_strategy: round-robin
  redis_host: localhost
mystery: 1
`)
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("err = %v, want an error (exit status 2)", err)
	}
	for _, want := range []string{
		"config.yaml:6: warning: model_list[0].litellm_params.region_name: ignored: llmq does not route by region",
		"config.yaml:7: error: model_list[1]: tier2 cannot be served: ",
		`unknown provider prefix "azure-ish"`,
		"config.yaml:14: error: model_list[2].litellm_params.api_key: tier3 cannot be served: environment variable LLMQ_TEST_SURELY_UNSET_CONFIGCHECK is not set",
		`config.yaml:16: error: router_settings.routing_strategy: unknown routing strategy "round-robin"`,
		"config.yaml:17: warning: router_settings.redis_host: ignored",
		"config.yaml:18: warning: mystery: unknown key, ignored",
		"config.yaml: 3 error(s), 3 warning(s) for up",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secretKey) || strings.Contains(err.Error(), secretKey) {
		t.Errorf("a key is printed:\n%s\n%v", out, err)
	}
}

func TestConfigCheck_CleanFile_ListsDeploymentsAndSucceeds(t *testing.T) {
	t.Parallel()
	out, err := runConfigCheck(t, `model_list:
  - model_name: tier1
    litellm_params: {model: sim/a}
    model_info: {id: tier1-a}
  - model_name: tier1
    litellm_params: {model: ollama/llama3, api_base: "http://gpu-b:11434"}
    model_info: {id: tier1-b}
`)
	if err != nil {
		t.Fatalf("err = %v\n%s", err, out)
	}
	for _, want := range []string{
		"deployments: 2 of 2 can be served here (llmq up runs all of them: *)",
		"*serve   tier1", "tier1-a", "tier1-b",
		"config.yaml: 0 error(s), 0 warning(s) for up",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigCheck_YAMLSyntaxError_PointsAtItsLine(t *testing.T) {
	t.Parallel()
	out, err := runConfigCheck(t, "model_list:\n  - model_name: a\n    litellm_params: {model: sim/a\n  - model_name: b\n")
	if err == nil {
		t.Fatalf("no error:\n%s", out)
	}
	if !strings.Contains(out, "config.yaml:4: error: YAML syntax: did not find expected ',' or '}'") {
		t.Errorf("output does not point at the line:\n%s", out)
	}
}

func TestConfigCheck_Roles_DecideWhatStopsTheProcess(t *testing.T) {
	t.Parallel()
	const src = `model_list:
  - model_name: good
    litellm_params: {model: sim/a}
    model_info: {id: good-1}
  - model_name: bad
    litellm_params: {model: vertex_ai/gemini-pro}
    model_info: {id: bad-1}
general_settings:
  master_key: os.environ/LLMQ_TEST_SURELY_UNSET_MASTER
`
	tests := []struct {
		args    []string
		wantErr bool
		want    string
	}{
		{nil, true, "config.yaml:5: error: model_list[1]: bad cannot be served: "},
		{[]string{"--for", "dispatcher"}, false, "a dispatcher runs none of them"},
		{[]string{"--for", "worker", "--deployment", "good-1"}, false, "this worker runs the one marked *"},
		{[]string{"--for", "worker", "--deployment", "bad-1"}, true, "bad cannot be served"},
		{[]string{"--for", "gateway"}, true, "config.yaml:9: error: general_settings.master_key: environment variable LLMQ_TEST_SURELY_UNSET_MASTER is not set"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"for"}, tt.args...), " "), func(t *testing.T) {
			t.Parallel()
			out, err := runConfigCheck(t, src, tt.args...)
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error %v\n%s", err, tt.wantErr, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestConfigCheck_NoSecretIsEverPrinted(t *testing.T) {
	t.Parallel()
	env := func(name string) (string, bool) { return secretKey, true }
	srcs := []string{
		// Keys from the environment, in fields of every kind.
		`model_list:
  - model_name: t
    litellm_params: {model: openai/x, api_key: os.environ/K, rpm: os.environ/K, timeout: os.environ/K, api_base: os.environ/K}
  - model_name: u
    litellm_params: {model: anthropic/y}
router_settings: {num_retries: os.environ/K, routing_strategy: os.environ/K, redis_password: os.environ/K}
general_settings: {master_key: os.environ/K, database_url: os.environ/K}
environment_variables: {K2: ` + secretKey + `}
`,
		// Keys written in the file, in the wrong places too.
		`model_list:
  - model_name: t
    litellm_params: {model: mystery/x, api_key: ` + secretKey + `, rpm: ` + secretKey + `, timeout: ` + secretKey + `}
  - model_name: t
    litellm_params: {model: mystery/x, api_key: ` + secretKey + `, rpm: ` + secretKey + `, timeout: ` + secretKey + `}
router_settings: {redis_password: ` + secretKey + `}
`,
	}
	for i, src := range srcs {
		for _, role := range checkRoles {
			var b bytes.Buffer
			r := checkConfigData("c.yaml", []byte(src), env, role, "t")
			r.print(&b)
			if strings.Contains(b.String(), secretKey) || strings.Contains(r.errors().Error(), secretKey) {
				t.Errorf("source %d, role %s: a key is printed:\n%s", i, role, b.String())
			}
		}
	}
}
