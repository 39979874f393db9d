package family_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/llmq/llmq/config/family"
)

// docPath is where the tables are documented.
const docPath = "../../docs/providers/openai.md"

func code(s string) string {
	if s == "" {
		return "—"
	}
	return "`" + s + "`"
}

func codes(list []string) string {
	if len(list) == 0 {
		return "—"
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = code(s)
	}
	return strings.Join(out, ", ")
}

// familyTable renders the family table as docs/providers/openai.md shows
// it.
func familyTable() string {
	var b strings.Builder
	b.WriteString("| Prefix | Adapter | Default `api_base` | `api_key` from | `api_base` from | Also read | Notes |\n")
	b.WriteString("|--------|---------|--------------------|----------------|-----------------|-----------|-------|\n")
	for _, f := range family.All() {
		var also []string
		for _, v := range f.VersionEnv {
			also = append(also, code(v)+" (`api_version`)")
		}
		for _, v := range f.TokenEnv {
			also = append(also, code(v)+" (`azure_ad_token`)")
		}
		alsoRead := "—"
		if len(also) > 0 {
			alsoRead = strings.Join(also, ", ")
		}
		notes := f.Notes
		if f.KeyRequired {
			notes = strings.TrimSuffix("key required; "+notes, "; ")
		}
		if notes == "" {
			notes = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", code(f.Prefix+"/"), f.Adapter, code(f.BaseURL),
			codes(f.KeyEnv), codes(f.BaseEnv), alsoRead, notes)
	}
	return b.String()
}

func unsupportedTable() string {
	var b strings.Builder
	b.WriteString("| Prefix | Provider | Why |\n|--------|----------|-----|\n")
	for _, u := range family.AllUnsupported() {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", code(u.Prefix+"/"), u.Name, u.Why)
	}
	return b.String()
}

// TestDocsShowTheTables keeps docs/providers/openai.md in step with the
// tables: on a difference it prints the table to paste.
func TestDocsShowTheTables(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, table := range map[string]string{"family": familyTable(), "unsupported": unsupportedTable()} {
		if !strings.Contains(string(doc), table) {
			t.Errorf("%s does not show the %s table as the code has it; paste this:\n\n%s", docPath, name, table)
		}
	}
}

func TestTablesAreConsistent(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, f := range family.All() {
		if seen[f.Prefix] || f.Prefix == "" || strings.ContainsAny(f.Prefix, "/ ") {
			t.Errorf("prefix %q empty, malformed or twice", f.Prefix)
		}
		seen[f.Prefix] = true
		if f.KeyRequired && (len(f.KeyEnv) == 0 || f.BaseURL == "") {
			t.Errorf("%s: a key is required, yet there is no key variable or public endpoint", f.Prefix)
		}
		if f.BaseURL != "" && !strings.HasPrefix(f.BaseURL, "http://") && !strings.HasPrefix(f.BaseURL, "https://") {
			t.Errorf("%s: base %q is not an http(s) URL", f.Prefix, f.BaseURL)
		}
		if got, ok := family.Lookup(f.Prefix); !ok || got.Prefix != f.Prefix {
			t.Errorf("Lookup(%q) = %v, %v", f.Prefix, got.Prefix, ok)
		}
	}
	for _, u := range family.AllUnsupported() {
		if seen[u.Prefix] {
			t.Errorf("%s is both served and unsupported", u.Prefix)
		}
		seen[u.Prefix] = true
		if u.Name == "" || u.Why == "" {
			t.Errorf("%s: name or reason missing", u.Prefix)
		}
	}
	for _, want := range []string{"azure", "mistral", "deepseek", "together_ai", "fireworks_ai", "xai", "perplexity", "cerebras",
		"deepinfra", "huggingface", "vllm", "hosted_vllm", "lm_studio", "openrouter", "groq", "openai", "cohere"} {
		if _, ok := family.Lookup(want); !ok {
			t.Errorf("%s is not served", want)
		}
	}
	for _, want := range []string{"vertex_ai", "bedrock", "sagemaker", "azure_ai", "replicate", "watsonx", "zhipu", "zai"} {
		if _, ok := family.LookupUnsupported(want); !ok {
			t.Errorf("%s is not listed as unsupported", want)
		}
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		model, prefix, name string
		ok                  bool
	}{
		{"groq/llama-3.1-8b", "groq", "llama-3.1-8b", true},
		{"huggingface/together/org/m", "huggingface", "together/org/m", true},
		{"claude-3-haiku", "anthropic", "claude-3-haiku", true},
		{"gpt-4o", "openai", "gpt-4o", true},
		{"o3-mini", "openai", "o3-mini", true},
		{"llama3", "", "llama3", false},
	} {
		p, n, ok := family.Split(c.model)
		if p != c.prefix || n != c.name || ok != c.ok {
			t.Errorf("Split(%q) = %q %q %v", c.model, p, n, ok)
		}
	}
}

func TestWireModel(t *testing.T) {
	t.Parallel()
	fw, _ := family.Lookup("fireworks_ai")
	hf, _ := family.Lookup("huggingface")
	groq, _ := family.Lookup("groq")
	for _, c := range []struct {
		f        family.Family
		in, want string
	}{
		{fw, "llama-v3p1-8b-instruct", "accounts/fireworks/models/llama-v3p1-8b-instruct"},
		{fw, "accounts/me/models/tuned", "accounts/me/models/tuned"},
		{hf, "deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1"},
		{hf, "novita/deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1:novita"},
		{groq, "llama-3.1-8b-instant", "llama-3.1-8b-instant"},
	} {
		if got := c.f.WireModel(c.in); got != c.want {
			t.Errorf("%s WireModel(%q) = %q, want %q", c.f.Prefix, c.in, got, c.want)
		}
	}
}

func TestFirstSet_SkipsUnsetAndEmpty(t *testing.T) {
	t.Parallel()
	env := map[string]string{"B": "", "C": "c"}
	getenv := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	if n, v, ok := family.FirstSet([]string{"A", "B", "C"}, getenv); n != "C" || v != "c" || !ok {
		t.Errorf("FirstSet = %q %q %v", n, v, ok)
	}
	if _, _, ok := family.FirstSet([]string{"A", "B"}, getenv); ok {
		t.Error("found a variable among unset and empty ones")
	}
}

func TestUnsupportedError(t *testing.T) {
	t.Parallel()
	u, _ := family.LookupUnsupported("bedrock")
	err := error(&family.UnsupportedError{Model: "bedrock/claude", Unsupported: u})
	if !errors.Is(err, family.ErrUnsupported) || !strings.Contains(err.Error(), `provider "bedrock" (AWS Bedrock) is not supported by llmq yet`) {
		t.Errorf("err = %v", err)
	}
}
