package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/llmq/llmq/worker/provider/anthropic"
	"github.com/llmq/llmq/worker/provider/anthropic/anthropictest"
	"github.com/llmq/llmq/worker/provider/cohere/coheretest"
	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

// The provider fakes behind TestGateway_OpenAIClient_ToolsJSONSchemaEmbeddings
// answer as a model would the requests of features.mjs, each from the
// request itself (the loops may run at once): with tools and no tool
// result yet, one get_weather call with featureArgs; after a tool result,
// text quoting it; asked for JSON, featureCity (a value of features.mjs's
// schema).
const (
	featureArgs = `{"city":"Paris","unit":"celsius"}`
	featureCity = `{"name":"Rome","population":2873000,"capital":true}`
	// featureEmbedDims is the fakes' embedding length: features.mjs asks
	// for dimensions 8 and compares with the default length.
	featureEmbedDims = 8
)

// featureAnswer is what the fakes answer to a result of the tool: the
// result quoted.
func featureAnswer(result string) string { return "The tool says: " + result }

// openaiFeatureModels is OpenAI's API (the openaitest fake) behind both
// tiers.
func openaiFeatureModels(t *testing.T) string {
	fake := openaitest.NewServer(t, openaitest.Config{Key: "sk-fake-openai", EmbeddingDimensions: featureEmbedDims,
		Respond: openaiFeatureRespond})
	return fmt.Sprintf(`  - model_name: chat
    litellm_params: {model: openai/gpt-4o-mini, api_base: %[1]q, api_key: sk-fake-openai}
  - model_name: embed
    litellm_params: {model: openai/text-embedding-3-small, api_base: %[1]q, api_key: sk-fake-openai}
    model_info: {mode: embedding}
`, fake.URL())
}

// azureFeatureModels is Azure OpenAI (the openaitest fake as Azure, any
// deployment) behind both tiers.
func azureFeatureModels(t *testing.T) string {
	fake := openaitest.NewServer(t, openaitest.Config{Key: "azure-fake-key", EmbeddingDimensions: featureEmbedDims,
		Respond: openaiFeatureRespond, Azure: &openaitest.Azure{}})
	return fmt.Sprintf(`  - model_name: chat
    litellm_params: {model: azure/gpt-4o-prod, api_base: %[1]q, api_key: azure-fake-key, api_version: "2024-10-21"}
  - model_name: embed
    litellm_params: {model: azure/embed-prod, api_base: %[1]q, api_key: azure-fake-key, api_version: "2024-10-21"}
    model_info: {mode: embedding}
`, fake.URL())
}

func openaiFeatureRespond(r *openaitest.Request) openaitest.Answer {
	last := r.Messages[len(r.Messages)-1]
	switch {
	case r.ResponseFormat == "json_schema":
		return openaitest.Answer{Content: featureCity}
	case last.Role == "tool":
		return openaitest.Answer{Content: featureAnswer(last.Content)}
	case len(r.Tools) > 0:
		return openaitest.Answer{ToolCalls: []openaitest.ToolCall{{Name: "get_weather", Arguments: featureArgs}}}
	}
	return openaitest.Answer{}
}

// ollamaFeatureModels is an Ollama host (the ollamatest fake) behind both
// tiers. Ollama has no parallel_tool_calls: the adapter refuses false
// unless drop_params, which is what a LiteLLM user sets for Ollama — here
// on the deployment.
func ollamaFeatureModels(t *testing.T) string {
	fake := ollamatest.NewServer(t, ollamatest.Config{EmbedModels: []string{"nomic-embed-text"}, EmbedDims: featureEmbedDims,
		Answer: func(r ollamatest.ChatRequest) ollamatest.Answer {
			last := r.Messages[len(r.Messages)-1]
			switch {
			case len(r.Format) > 0:
				return ollamatest.Answer{Content: featureCity}
			case last.Role == "tool":
				return ollamatest.Answer{Content: featureAnswer(last.Content)}
			case len(r.Tools) > 0:
				return ollamatest.Answer{ToolCalls: []ollamatest.ToolCall{{Function: ollamatest.ToolCallFunction{
					Name: "get_weather", Arguments: json.RawMessage(featureArgs)}}}}
			}
			return ollamatest.Answer{Content: "no tools, no format"}
		}})
	return fmt.Sprintf(`  - model_name: chat
    litellm_params: {model: ollama/%[2]s, api_base: %[1]q, drop_params: true}
  - model_name: embed
    litellm_params: {model: ollama/nomic-embed-text, api_base: %[1]q}
    model_info: {mode: embedding}
`, fake.URL(), ollamatest.DefaultModel)
}

// geminiFeatureModels is the Gemini API (the geminitest fake) behind both
// tiers. The fake calls get_weather when it may (not in answer to a
// function response, under AUTO), echoes the last user turn (there the
// function's response, so the result is quoted), and writes JSON from
// the responseSchema.
func geminiFeatureModels(t *testing.T) string {
	fake := geminitest.NewServer(t, geminitest.Config{Key: "gemini-fake-key", EmbedDimensions: featureEmbedDims,
		Calls: []geminitest.Call{{Name: "get_weather", Args: featureArgs}}})
	return fmt.Sprintf(`  - model_name: chat
    litellm_params: {model: gemini/gemini-2.0-flash, api_base: %[1]q, api_key: gemini-fake-key}
  - model_name: embed
    litellm_params: {model: gemini/text-embedding-004, api_base: %[1]q, api_key: gemini-fake-key}
    model_info: {mode: embedding}
`, fake.URL())
}

// anthropicFeatureModels is Anthropic's Messages API (the anthropictest
// fake) behind the chat tier; Anthropic has no embeddings. json_schema
// goes to Anthropic as a forced json_tool_call tool, which the model
// calls with the object.
func anthropicFeatureModels(t *testing.T) string {
	fake := anthropictest.NewServer(t, anthropictest.Config{Key: "sk-ant-fake", Respond: func(r *anthropictest.Request) anthropictest.Answer {
		for _, tl := range r.Tools {
			if tl.Name == anthropic.JSONToolName {
				return anthropictest.Answer{ToolUses: []anthropictest.ToolUse{{Name: anthropic.JSONToolName, Input: featureCity}}}
			}
		}
		last := r.Messages[len(r.Messages)-1]
		var results []string
		for _, b := range last.Content.Items {
			if b.Type == "tool_result" {
				results = append(results, b.ResultText())
			}
		}
		switch {
		case len(results) > 0:
			return anthropictest.Answer{Text: featureAnswer(strings.Join(results, "; "))}
		case len(r.Tools) > 0:
			return anthropictest.Answer{ToolUses: []anthropictest.ToolUse{{Name: "get_weather", Input: featureArgs}}}
		}
		return anthropictest.Answer{Text: "no tools"}
	}})
	return fmt.Sprintf(`  - model_name: chat
    litellm_params: {model: anthropic/claude-3-5-sonnet-20240620, api_base: %q, api_key: sk-ant-fake}
`, fake.URL())
}

// cohereFeatureModels is Cohere's v2 chat API (the coheretest fake)
// behind the chat tier; llmq has no Cohere embeddings. Cohere has no
// parallel_tool_calls: as for Ollama, the deployment drops it.
// json_schema goes as a json_object with the schema.
func cohereFeatureModels(t *testing.T) string {
	fake := coheretest.NewServer(t, coheretest.Config{Key: "cohere-fake-key", Respond: func(r *coheretest.Request) coheretest.Answer {
		last := r.Messages[len(r.Messages)-1]
		switch {
		case r.ResponseFormat == "json_object" && r.JSONSchema:
			return coheretest.Answer{Content: featureCity}
		case last.Role == "tool":
			return coheretest.Answer{Content: featureAnswer(last.Content)}
		case len(r.Tools) > 0:
			return coheretest.Answer{ToolPlan: "I will look up the weather in Paris.",
				ToolCalls: []coheretest.ToolCall{{Name: "get_weather", Arguments: featureArgs}}}
		}
		return coheretest.Answer{}
	}})
	return fmt.Sprintf(`  - model_name: chat
    litellm_params: {model: cohere/command-r-plus, api_base: %q, api_key: cohere-fake-key, drop_params: true}
`, fake.URL())
}
