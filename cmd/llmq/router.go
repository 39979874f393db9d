package main

import (
	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/dispatcher"
)

// routerFeatures sets the dispatcher's part of LiteLLM's router features
// from the file: tag routing (enable_tag_filtering,
// tag_filtering_match_any) and the deployments' own num_retries. Workers
// take the rest from their deployments (worker.FromDeployment).
func routerFeatures(dc *dispatcher.Config, cfg *config.Config) {
	rs := &cfg.RouterSettings
	dc.TagFiltering = rs.EnableTagFiltering
	dc.TagMatchAll = rs.TagFilteringMatchAny != nil && !*rs.TagFilteringMatchAny
	for i := range cfg.ModelList {
		d := &cfg.ModelList[i]
		if n := d.LitellmParams.NumRetries; n != nil {
			if dc.Policy.DeploymentRetries == nil {
				dc.Policy.DeploymentRetries = map[string]int{}
			}
			dc.Policy.DeploymentRetries[d.ID] = max(*n, 0)
		}
	}
}
