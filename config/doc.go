// Package config loads llmq's configuration: LiteLLM's config.yaml shape
// (model_list of model_name + litellm_params, router_settings,
// litellm_settings, general_settings, environment_variables) plus an
// optional llmq_settings block.
//
// Check reports everything wrong with a file at once, each Diagnostic with
// its line and YAML path (`llmq config check` prints them); Parse fails
// with all of its errors (Errors) and keeps the warnings in
// Config.Warnings. No message repeats a value that came from the
// environment, and none shows a key.
//
// Nothing is silent: a key either decodes into a field llmq acts on, or is
// reported — "ignored: llmq does not do X yet" for LiteLLM keys llmq parses
// but does not act on (the table in keys.go), "unknown key" otherwise.
// Repeated keys are warned about; the last one wins, as in LiteLLM.
//
// Values of the form os.environ/NAME are read from the environment (then
// from environment_variables). An unset variable fails the file only where
// llmq uses the value outside deployments; inside a deployment it is that
// deployment's Err (only the processes that run it fail); in
// general_settings.master_key it is MasterKeyErr (only the gateway fails);
// in a key llmq ignores it is part of that key's warning. A deployment
// without api_key, api_base or api_version reads its provider's usual
// variable (ProviderEnv: OPENAI_API_KEY, ANTHROPIC_API_KEY, ...), as
// LiteLLM does.
//
// Without model_info.id a deployment's id is a hash of its model_name and
// litellm_params as written, keys included (two deployments differing only
// in api_key are two deployments), before os.environ/ is resolved, so that
// every process computes the same id; see id.go.
package config
