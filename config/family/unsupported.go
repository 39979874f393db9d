package family

import (
	"errors"
	"fmt"
	"slices"
)

// Unsupported is a LiteLLM provider prefix llmq does not serve yet.
type Unsupported struct {
	// Prefix is LiteLLM's.
	Prefix string
	// Name is the provider's.
	Name string
	// Why says what is missing, and what to use meanwhile when there is a
	// way.
	Why string
}

// unsupported lists the prefixes of LiteLLM's most used providers that
// llmq has no adapter for. A prefix in neither table is unknown.
var unsupported = []Unsupported{
	{"vertex_ai", "Google Vertex AI", "needs Google Cloud credentials (service accounts, ADC); `gemini/` with an AI Studio key works"},
	{"vertex_ai_beta", "Google Vertex AI", "needs Google Cloud credentials; `gemini/` with an AI Studio key works"},
	// LiteLLM reads a bare Model Garden path with vertex_project set as a
	// Vertex AI model.
	{"publishers", "Google Vertex AI, a Model Garden path", "needs Google Cloud credentials (service accounts, ADC); `gemini/` with an AI Studio key works"},
	{"bedrock", "AWS Bedrock", "needs AWS SigV4 request signing"},
	{"bedrock_converse", "AWS Bedrock (Converse)", "needs AWS SigV4 request signing"},
	{"sagemaker", "AWS SageMaker", "needs AWS SigV4 request signing"},
	{"sagemaker_chat", "AWS SageMaker", "needs AWS SigV4 request signing"},
	{"azure_ai", "Azure AI Foundry", "its model-inference API is not implemented; an OpenAI-compatible endpoint works as `openai/` with `api_base`"},
	{"azure_text", "Azure OpenAI (completions)", "the legacy completions API is not implemented; use `azure/` (chat completions)"},
	{"text-completion-openai", "OpenAI (completions)", "the legacy completions API is not implemented; use `openai/` (chat completions)"},
	{"text-completion-codestral", "Codestral (FIM)", "fill-in-the-middle completions are not implemented; use `codestral/` (chat)"},
	{"anthropic_text", "Anthropic (text completions)", "the legacy completions API is not implemented; use `anthropic/`"},
	{"replicate", "Replicate", "its predictions API is not implemented"},
	{"watsonx", "IBM watsonx.ai", "needs IBM Cloud IAM tokens"},
	{"watsonx_text", "IBM watsonx.ai", "needs IBM Cloud IAM tokens"},
	{"databricks", "Databricks", "not implemented; its serving endpoints speak Chat Completions: `openai/` with `api_base` `https://<workspace>/serving-endpoints`"},
	{"cloudflare", "Cloudflare Workers AI", "not implemented; its OpenAI-compatible endpoint works as `openai/` with `api_base`"},
	{"ai21", "AI21", "not implemented"},
	{"ai21_chat", "AI21", "not implemented"},
	{"palm", "Google PaLM", "retired by Google; use `gemini/`"},
	{"aleph_alpha", "Aleph Alpha", "not implemented"},
	{"nlp_cloud", "NLP Cloud", "not implemented"},
	{"baseten", "Baseten", "not implemented"},
	{"predibase", "Predibase", "not implemented"},
	{"petals", "Petals", "not implemented"},
	{"clarifai", "Clarifai", "not implemented"},
	{"triton", "NVIDIA Triton", "not implemented"},
	{"oci", "Oracle OCI Generative AI", "needs OCI request signing"},
	{"snowflake", "Snowflake Cortex", "not implemented"},
	{"voyage", "Voyage AI", "an embeddings provider llmq has no adapter for yet"},
	{"jina_ai", "Jina AI", "an embeddings provider llmq has no adapter for yet"},
	{"zai", "Z.AI (Zhipu AI)", "not implemented; its API is OpenAI-compatible: `openai/<model>` with `api_base` https://api.z.ai/api/paas/v4 (or https://open.bigmodel.cn/api/paas/v4) works"},
	{"zhipu", "Zhipu AI", "Zhipu AI's own API (open.bigmodel.cn) has no adapter; LiteLLM's docs name no `zhipu/` provider either (theirs is `zai/`); the API is OpenAI-compatible: `openai/<model>` with `api_base` https://open.bigmodel.cn/api/paas/v4 works"},
}

// LookupUnsupported returns the entry of prefix when llmq knows it as not
// supported.
func LookupUnsupported(prefix string) (Unsupported, bool) {
	i := slices.IndexFunc(unsupported, func(u Unsupported) bool { return u.Prefix == prefix })
	if i < 0 {
		return Unsupported{}, false
	}
	return unsupported[i], true
}

// AllUnsupported returns the unsupported prefixes, in table order.
func AllUnsupported() []Unsupported { return slices.Clone(unsupported) }

// ErrUnsupported is wrapped by the error of a model whose provider llmq
// does not serve yet, and of a deployment of an endpoint llmq does not
// serve (ModeError): errors.Is(err, ErrUnsupported) tells it from a typo
// or a missing key.
var ErrUnsupported = errors.New("provider not supported by llmq yet")

// UnsupportedError is the error of a model whose prefix is in the
// unsupported table. It wraps ErrUnsupported.
type UnsupportedError struct {
	Model string
	Unsupported
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("model %q: provider %q (%s) is not supported by llmq yet: %s", e.Model, e.Prefix, e.Name, e.Why)
}

// Unwrap returns ErrUnsupported.
func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// Modes llmq does not serve: LiteLLM's model_info.mode values other than
// chat, completion and embedding (served where the adapter embeds: see
// Adapter.Embeds), with what llmq says of them.
var unservedModes = map[string]string{
	"image_generation":    "image generation is not supported by llmq (it serves chat completions and embeddings)",
	"rerank":              "reranking is not served by llmq (it serves chat completions and embeddings)",
	"audio_transcription": "audio transcription is not served by llmq (it serves chat completions and embeddings)",
	"audio_speech":        "text to speech is not served by llmq (it serves chat completions and embeddings)",
	"moderation":          "moderation is not served by llmq (it serves chat completions and embeddings)",
}

// UnservedMode returns what llmq says of a deployment of LiteLLM mode
// mode when llmq does not serve that mode.
func UnservedMode(mode string) (why string, ok bool) {
	why, ok = unservedModes[mode]
	return why, ok
}

// ModeError is the error of a deployment of an endpoint llmq does not
// serve (image generation, embeddings, ...). It wraps ErrUnsupported.
type ModeError struct {
	Model string
	// Mode is LiteLLM's (model_info.mode).
	Mode string
	// Inferred is set when the mode was not written but read from the
	// model's name (dall-e-3, gpt-image-1, ...).
	Inferred bool
	Why      string
}

func (e *ModeError) Error() string {
	if e.Inferred {
		return fmt.Sprintf("model %q is an image generation model: %s", e.Model, e.Why)
	}
	return fmt.Sprintf("model %q has model_info.mode %s: %s", e.Model, e.Mode, e.Why)
}

// Unwrap returns ErrUnsupported.
func (e *ModeError) Unwrap() error { return ErrUnsupported }
