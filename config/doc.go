// Package config loads llmq's configuration: LiteLLM's config.yaml shape
// (model_list of model_name + litellm_params, router_settings,
// litellm_settings, general_settings, environment_variables) plus an
// optional llmq_settings block. Values of the form os.environ/NAME are read
// from the environment; unknown keys are reported as warnings.
package config
