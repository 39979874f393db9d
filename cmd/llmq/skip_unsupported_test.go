package main

import (
	"strings"
	"testing"
)

// mixedConfig has a deployment llmq serves and two it does not serve yet,
// one of them with a variable that is not set (LiteLLM's bedrock
// credentials).
const mixedConfig = `model_list:
  - model_name: tier1
    litellm_params:
      model: sim/fast
  - model_name: tier2
    litellm_params:
      model: bedrock/anthropic.claude-3-sonnet-20240229-v1:0
      aws_access_key_id: os.environ/LLMQ_TEST_SURELY_UNSET_AWS_KEY
  - model_name: tier1
    litellm_params:
      model: vertex_ai/gemini-1.5-pro
`

func TestCLI_Up_UnsupportedProviderFailsNamingDeploymentAndFlag(t *testing.T) {
	t.Parallel()
	out, errOut := newOutBuf(), newOutBuf()
	cmd := newApp(out, errOut).root()
	cmd.SetArgs([]string{"up", "-c", writeConfig(t, mixedConfig), "--listen", "127.0.0.1:-1"})
	err := cmd.Execute()
	if err == nil {
		t.Fatal("up started with deployments it cannot serve")
	}
	for _, w := range []string{"tier2", `provider "bedrock"`, `provider "vertex_ai"`, "not supported by llmq yet", "--skip-unsupported"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %s:\n%v", w, err)
		}
	}
}

func TestCLI_Up_SkipUnsupportedStartsTheRestWithAWarningEach(t *testing.T) {
	t.Parallel()
	u := startUp(t, "-c", writeConfig(t, mixedConfig), "--skip-unsupported", "--no-batch")
	got, _, err := u.run(t, "complete", "--tier", "tier1", "--max-tokens", "2", "a b c")
	if err != nil || strings.TrimSpace(got) != "a b" {
		t.Fatalf("tier1 answered %q, %v", got, err)
	}
	logs := u.Stderr.String()
	for _, m := range []string{"bedrock/anthropic.claude-3-sonnet", "vertex_ai/gemini-1.5-pro"} {
		if strings.Count(logs, "skipping a deployment") != 2 || !strings.Contains(logs, m) {
			t.Errorf("no warning for %s:\n%s", m, logs)
		}
	}
	if strings.Contains(logs, "LLMQ_TEST_SURELY_UNSET_AWS_KEY") && strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("a skipped deployment's unset variable was an error:\n%s", logs)
	}
	if !strings.Contains(u.Stdout.String(), "(skipped: provider not supported yet)") {
		t.Errorf("up's listing does not mark the skipped deployments:\n%s", u.Stdout.String())
	}
	// tier2 is known to the dispatcher but has no worker.
	_, _, err = u.run(t, "complete", "--tier", "tier2", "hi")
	if err == nil || strings.Contains(err.Error(), "unknown_tier") {
		t.Errorf("tier2: err = %v, want a no-deployments error", err)
	}
}

func TestCLI_Up_SkipUnsupportedWithNothingLeftFails(t *testing.T) {
	t.Parallel()
	src := "model_list:\n  - model_name: t\n    litellm_params:\n      model: sagemaker/jumpstart-llama\n"
	out, errOut := newOutBuf(), newOutBuf()
	cmd := newApp(out, errOut).root()
	cmd.SetArgs([]string{"up", "-c", writeConfig(t, src), "--skip-unsupported", "--listen", "127.0.0.1:-1"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "no deployment left to run") {
		t.Fatalf("err = %v", err)
	}
}

func TestCLI_Up_SkipUnsupportedStillFailsOnOtherProblems(t *testing.T) {
	t.Parallel()
	src := mixedConfig + "  - model_name: tier3\n    litellm_params:\n      model: mistral/mistral-small\n      api_key: os.environ/LLMQ_TEST_SURELY_UNSET_MISTRAL\n"
	out, errOut := newOutBuf(), newOutBuf()
	cmd := newApp(out, errOut).root()
	cmd.SetArgs([]string{"up", "-c", writeConfig(t, src), "--skip-unsupported", "--listen", "127.0.0.1:-1"})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "LLMQ_TEST_SURELY_UNSET_MISTRAL") || strings.Contains(err.Error(), "bedrock") {
		t.Fatalf("err = %v, want only the servable deployment's problem", err)
	}
}
