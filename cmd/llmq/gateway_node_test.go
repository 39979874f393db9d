package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/metrics/metricstest"
)

// openaiHint is what to run when the openai client cannot start.
const openaiHint = "run `npm ci --prefix gateway/testdata/openai-client` (Node.js 18+ needed)"

// pricedConfig is a fleet with prices, a master key read through
// os.environ/ (resolved from environment_variables, so the test needs no
// process environment), and a second tier.
const pricedConfig = `model_list:
  - model_name: tier1
    litellm_params:
      model: sim/local-small
      sim: {ttft: 5ms, tokens_per_second: 2000, parallel: 4}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
    model_info: {id: tier1-gpu-a}
  - model_name: tier1
    litellm_params:
      model: sim/local-small
      sim: {ttft: 5ms, tokens_per_second: 1000, parallel: 2}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
    model_info: {id: tier1-gpu-b}
  - model_name: tier2
    litellm_params:
      model: sim/flash
      sim: {parallel: 8}
    model_info: {id: tier2-flash}
general_settings:
  master_key: os.environ/LLMQ_GATEWAY_TEST_KEY
environment_variables:
  LLMQ_GATEWAY_TEST_KEY: sk-llmq-test
`

const (
	inPrice, outPrice = 0.000001, 0.000002
	testKey           = "sk-llmq-test"
)

var (
	gatewayRE = regexp.MustCompile(`OpenAI-compatible gateway: (http://\S+/v1)\n`)
	metricsRE = regexp.MustCompile(`Prometheus metrics: (http://\S+/metrics)\n`)
)

// usage is OpenAI's usage object.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// openaiSummary is what gateway/testdata/openai-client/client.mjs prints.
type openaiSummary struct {
	OK     bool     `json:"ok"`
	Errors []string `json:"errors"`
	Models []string `json:"models"`
	Plain  []struct {
		Object, Content, Finish string
		Usage                   usage
		Routing                 struct {
			Tier, Deployment string
			CostUSD          float64 `json:"cost_usd"`
		}
	} `json:"plain"`
	Stream []struct {
		Content, Finish string
		Chunks          int
		Usage           *usage
		Routing         *struct {
			Tier    string
			CostUSD float64 `json:"cost_usd"`
			TTFTMs  float64 `json:"ttft_ms"`
		}
	} `json:"stream"`
	Helper struct {
		Content, Finish string
		Usage           *usage
	} `json:"helper"`
	Failures map[string]struct {
		Class      string
		Status     int
		Code, Type *string
		RetryAfter *string
	} `json:"failures"`
}

// TestGateway_OfficialOpenAIClient runs the official openai npm package,
// unchanged, against `llmq up --gateway` (plain, streamed, the SDK's stream
// helper, errors), then scrapes `--metrics` and checks the counters add up
// to the requests it sent.
func TestGateway_OfficialOpenAIClient(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "gateway", "testdata", "openai-client")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): install Node.js and %s", err, openaiHint)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		t.Fatalf("gateway/testdata/openai-client/node_modules/openai is missing: %s", openaiHint)
	}

	u := startUp(t, "-c", writeConfig(t, pricedConfig), "--gateway", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	base := u.Stdout.await(t, gatewayRE, nil)[1]
	metricsURL := u.Stdout.await(t, metricsRE, nil)[1]

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := exec.CommandContext(ctx, node, "client.mjs", base, testKey, "tier1")
	run.Dir = dir
	out, err := run.CombinedOutput()
	line := lastLine(string(out))
	if err != nil {
		t.Fatalf("node client.mjs: %v\n%s", err, out)
	}
	var s openaiSummary
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	t.Logf("summary: %s", line)
	if !s.OK {
		t.Fatalf("client reported: %v", s.Errors)
	}
	if strings.Join(s.Models, ",") != "tier1,tier2" {
		t.Errorf("models %v, want tier1, tier2", s.Models)
	}

	var prompt, completion int
	if len(s.Plain) != 3 {
		t.Fatalf("%d plain completions", len(s.Plain))
	}
	for i, p := range s.Plain {
		if p.Object != "chat.completion" || p.Content == "" || p.Finish == "" || p.Routing.Tier != "tier1" ||
			p.Usage.CompletionTokens == 0 || p.Usage.TotalTokens != p.Usage.PromptTokens+p.Usage.CompletionTokens {
			t.Errorf("plain %d: %+v", i, p)
		}
		if want := float64(p.Usage.PromptTokens)*inPrice + float64(p.Usage.CompletionTokens)*outPrice; math.Abs(p.Routing.CostUSD-want) > 1e-12 {
			t.Errorf("plain %d: cost_usd %g, want %g", i, p.Routing.CostUSD, want)
		}
		prompt += p.Usage.PromptTokens
		completion += p.Usage.CompletionTokens
	}
	if len(s.Stream) != 2 {
		t.Fatalf("%d streams", len(s.Stream))
	}
	for i, st := range s.Stream {
		if st.Content == "" || st.Finish == "" || st.Chunks < 3 || st.Usage == nil || st.Routing == nil || st.Routing.Tier != "tier1" || st.Routing.TTFTMs <= 0 {
			t.Fatalf("stream %d: %+v", i, st)
		}
		prompt += st.Usage.PromptTokens
		completion += st.Usage.CompletionTokens
	}
	if s.Helper.Content == "" || s.Helper.Finish == "" || s.Helper.Usage == nil {
		t.Fatalf("stream helper: %+v", s.Helper)
	}
	prompt += s.Helper.Usage.PromptTokens
	completion += s.Helper.Usage.CompletionTokens

	wantFailures := map[string]struct {
		class  string
		status int
		code   string
	}{
		"unknown_model":        {"NotFoundError", 404, "model_not_found"},
		"unknown_model_stream": {"NotFoundError", 404, "model_not_found"},
		"bad_key":              {"AuthenticationError", 401, "invalid_api_key"},
		"bad_request":          {"BadRequestError", 400, "bad_request"},
	}
	for name, w := range wantFailures {
		got, ok := s.Failures[name]
		if !ok || got.Class != w.class || got.Status != w.status || got.Code == nil || *got.Code != w.code {
			t.Errorf("%s: %+v, want %s %d %s", name, got, w.class, w.status, w.code)
		}
	}

	// The counters add up to what the client sent: 6 completions (3
	// plain, 2 streamed, 1 through the helper), 2 unknown models (which
	// reach the dispatcher), 1 bad key and 1 bad request (refused by the
	// gateway).
	const okJobs, unknown, badKey, badReq = 6, 2, 1, 1
	var m metricstest.Samples
	deadline := time.Now().Add(wait)
	for {
		m = metricstest.Scrape(t, metricsURL)
		if (m.Sum("llmq_worker_jobs_total") == okJobs && m.Sum("llmq_gateway_requests_total") == okJobs+unknown+badKey+badReq) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // counters land just after the replies: poll the scrape
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"llmq_gateway_requests_total", nil, okJobs + unknown + badKey + badReq},
		{"llmq_gateway_requests_total", []string{"status", "200"}, okJobs},
		{"llmq_gateway_requests_total", []string{"status", "200", "stream", "true", "tier", "tier1"}, 3},
		{"llmq_gateway_requests_total", []string{"status", "404", "tier", "_unknown"}, unknown},
		{"llmq_gateway_requests_total", []string{"status", "401"}, badKey},
		{"llmq_gateway_requests_total", []string{"status", "400"}, badReq},
		{"llmq_gateway_request_duration_seconds_count", nil, okJobs + unknown + badKey + badReq},
		{"llmq_gateway_ttft_seconds_count", nil, 3},
		{"llmq_gateway_in_flight_requests", nil, 0},
		{"llmq_dispatcher_jobs_received_total", nil, okJobs + unknown},
		{"llmq_dispatcher_jobs_dispatched_total", []string{"tier", "tier1"}, okJobs},
		{"llmq_dispatcher_errors_total", []string{"code", "unknown_tier"}, unknown},
		{"llmq_dispatcher_errors_total", nil, unknown},
		{"llmq_worker_jobs_total", []string{"tier", "tier1", "outcome", "ok"}, okJobs},
		{"llmq_worker_jobs_total", nil, okJobs},
		{"llmq_worker_call_duration_seconds_count", nil, okJobs},
		{"llmq_worker_ttft_seconds_count", nil, 3},
		{"llmq_worker_input_tokens_total", nil, float64(prompt)},
		{"llmq_worker_output_tokens_total", nil, float64(completion)},
		{"llmq_dispatcher_workers", []string{"state", "ready"}, 3},
		{"llmq_worker_capacity_jobs", []string{"deployment", "tier1-gpu-a"}, 4},
		{"llmq_dispatcher_queue_depth_jobs", nil, 0},
	}
	for _, c := range checks {
		if got := m.Sum(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %g, want %g", c.name, c.labels, got, c.want)
		}
	}
	wantCost := float64(prompt)*inPrice + float64(completion)*outPrice
	for _, name := range []string{"llmq_worker_cost_usd_total", "llmq_gateway_cost_usd_total"} {
		if got := m.Sum(name, "tier", "tier1"); math.Abs(got-wantCost) > 1e-12 {
			t.Errorf("%s = %g, want %g", name, got, wantCost)
		}
	}
	if m.Sum("llmq_dispatcher_heartbeats_total") == 0 || !m.Has("go_goroutines") {
		t.Error("heartbeats or runtime metrics missing")
	}
}

// featureDeployment is a provider behind the gateway in
// TestGateway_OpenAIClient_ToolsJSONSchemaEmbeddings: models returns its
// model_list entries, a tier "chat" and, when embeds, a tier "embed" of
// model_info.mode embedding (starting whatever fake server they need,
// stopped by t.Cleanup).
type featureDeployment struct {
	name   string
	models func(t *testing.T) string
	embeds bool
	// city is the city the model calls get_weather for; "" takes any
	// (the simulator makes one up from the schema).
	city string
	// embedTokens: the provider reports the tokens of an embedding call
	// (Gemini's batchEmbedContents reports none, so llmq reports 0).
	embedTokens bool
	// wholeCalls: the provider streams each tool call whole, in one piece
	// (Ollama, Gemini), not in argument fragments.
	wholeCalls bool
}

// featureDeployments are the providers the openai client runs the whole
// request against. Adding one is one line here (the fakes' rows are in
// gateway_features_fakes_test.go).
var featureDeployments = []featureDeployment{
	{"sim", func(*testing.T) string { return simFeatureModels }, true, "", true, false},
	{"openai", openaiFeatureModels, true, "Paris", true, false},
	{"azure", azureFeatureModels, true, "Paris", true, false},
	{"ollama", ollamaFeatureModels, true, "Paris", true, true},
	{"gemini", geminiFeatureModels, true, "Paris", false, true},
	{"anthropic", anthropicFeatureModels, false, "Paris", true, false},
	{"cohere", cohereFeatureModels, false, "Paris", true, false},
}

const simFeatureModels = `  - model_name: chat
    litellm_params: {model: sim/tools, sim: {parallel: 4}}
  - model_name: embed
    litellm_params: {model: sim/embed}
    model_info: {mode: embedding}
`

// featuresSummary is what gateway/testdata/openai-client/features.mjs
// prints.
type featuresSummary struct {
	OK     bool     `json:"ok"`
	Errors []string `json:"errors"`
	Tools  struct {
		Plain, Stream, Helper toolLoop
		StreamDeltas          int `json:"streamDeltas"`
	} `json:"tools"`
	JSON struct {
		Plain, Stream struct {
			Finish string
			Value  map[string]any
		}
	} `json:"json"`
	Embeddings *struct {
		Object, Model      string
		Usage              usage
		Indexes, Dims      []int
		SameTextSameVector bool `json:"sameTextSameVector"`
		FloatMatchesBase64 bool `json:"floatMatchesBase64"`
		FloatDims          int  `json:"floatDims"`
		WrongTier          struct {
			Class  string
			Status int
		} `json:"wrongTier"`
	} `json:"embeddings"`
}

// toolLoop is one tool loop as features.mjs reports it.
type toolLoop struct {
	Finish1, Finish2 string
	Calls            []struct{ ID, Type, Name, Arguments string }
	Answer           string
	ToolResult       string `json:"toolResult"`
}

// TestGateway_OpenAIClient_ToolsJSONSchemaEmbeddings runs the official
// openai npm client against `llmq up --gateway` for each provider of
// featureDeployments: a complete tool loop plain, streamed chunk by chunk
// and through the SDK's stream helper; json_schema plain and streamed;
// embeddings (base64, as the SDK asks by default, and float).
func TestGateway_OpenAIClient_ToolsJSONSchemaEmbeddings(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "gateway", "testdata", "openai-client")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): install Node.js and %s", err, openaiHint)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		t.Fatalf("gateway/testdata/openai-client/node_modules/openai is missing: %s", openaiHint)
	}
	for _, fd := range featureDeployments {
		t.Run(fd.name, func(t *testing.T) {
			t.Parallel()
			cfg := "model_list:\n" + fd.models(t)
			// A beat of 1s, not the harness's 200ms: the rows run at once
			// (an llmq and a node each) under -race on a shared machine,
			// where a worker three 200ms beats late is dropped — seen as
			// "no worker serves tier" halfway through a run.
			u := startUp(t, "-c", writeConfig(t, cfg), "--gateway", "127.0.0.1:0", "--heartbeat", "1s")
			base := u.Stdout.await(t, gatewayRE, nil)[1]
			embed := "-"
			if fd.embeds {
				embed = "embed"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			run := exec.CommandContext(ctx, node, "features.mjs", base, "none", "chat", embed)
			run.Dir = dir
			out, err := run.CombinedOutput()
			if err != nil {
				t.Fatalf("node features.mjs: %v\n%s", err, out)
			}
			line := lastLine(string(out))
			var s featuresSummary
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				t.Fatalf("summary is not JSON: %v\n%s", err, out)
			}
			t.Logf("summary: %s", line)
			if !s.OK {
				t.Fatalf("client reported: %v", s.Errors)
			}
			for name, l := range map[string]toolLoop{"plain": s.Tools.Plain, "stream": s.Tools.Stream, "helper": s.Tools.Helper} {
				if l.Finish1 != "tool_calls" || len(l.Calls) != 1 || l.Calls[0].ID == "" || l.Calls[0].Type != "function" || l.Calls[0].Name != "get_weather" {
					t.Errorf("tool loop %s: first reply %+v: want one get_weather call, finish tool_calls", name, l)
					continue
				}
				var args struct{ City, Unit *string }
				err := json.Unmarshal([]byte(l.Calls[0].Arguments), &args)
				if err != nil || args.City == nil || *args.City == "" || (fd.city != "" && *args.City != fd.city) || args.Unit == nil || *args.Unit != "celsius" {
					t.Errorf("tool loop %s: arguments %q: want city %q and unit celsius", name, l.Calls[0].Arguments, fd.city)
				}
				// The model (the simulator, a fake) quotes the tool's
				// result: the client's tool message reached it.
				if l.Finish2 != "stop" || l.ToolResult == "" || !strings.Contains(l.Answer, l.ToolResult) {
					t.Errorf("tool loop %s: answer %q (%s): want the tool's result %q used", name, l.Answer, l.Finish2, l.ToolResult)
				}
			}
			// One call streamed: in pieces (id and name, then argument
			// fragments), or whole where the provider sends it so.
			if fd.wholeCalls && s.Tools.StreamDeltas != 1 {
				t.Errorf("%d tool-call deltas in the streamed loop: want the call in one piece, as %s streams it", s.Tools.StreamDeltas, fd.name)
			} else if !fd.wholeCalls && s.Tools.StreamDeltas < 2 {
				t.Errorf("%d tool-call deltas in the streamed loop: want the call in pieces", s.Tools.StreamDeltas)
			}
			for name, j := range map[string]struct {
				Finish string
				Value  map[string]any
			}{"plain": s.JSON.Plain, "stream": s.JSON.Stream} {
				cityName, _ := j.Value["name"].(string)
				population, isNumber := j.Value["population"].(float64)
				_, isBool := j.Value["capital"].(bool)
				if j.Finish != "stop" || len(j.Value) != 3 || cityName == "" || !isNumber || population != math.Trunc(population) || !isBool {
					t.Errorf("json_schema %s: %+v: want an object of the schema: name a string, population an integer, capital a boolean", name, j)
				}
			}
			if !fd.embeds {
				return
			}
			e := s.Embeddings
			if e == nil || e.Object != "list" || e.Model == "" || len(e.Indexes) != 3 || e.Indexes[0] != 0 || e.Indexes[1] != 1 || e.Indexes[2] != 2 ||
				len(e.Dims) != 3 || e.Dims[0] == 0 || e.Dims[1] != e.Dims[0] || e.Dims[2] != e.Dims[0] || !e.SameTextSameVector ||
				!e.FloatMatchesBase64 || e.FloatDims != e.Dims[1] || e.Usage.TotalTokens != e.Usage.PromptTokens {
				t.Fatalf("embeddings %+v", e)
			}
			if (e.Usage.PromptTokens > 0) != fd.embedTokens {
				t.Errorf("embeddings usage %+v: want tokens counted %v", e.Usage, fd.embedTokens)
			}
			if e.WrongTier.Class != "BadRequestError" || e.WrongTier.Status != 400 {
				t.Errorf("embeddings on the chat tier: %+v, want BadRequestError 400", e.WrongTier)
			}
		})
	}
}
