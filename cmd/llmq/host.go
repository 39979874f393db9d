package main

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/ollama"
)

// hostKey is the form of an api_base two deployments on one host share:
// scheme, lower-case host and port (the scheme's default port written
// out), without path, user info or trailing slash. "" when base is not a
// URL.
func hostKey(base string) string {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || u.Host == "" {
		return ""
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + host + ":" + port
}

// hostDeployments returns the deployments of cfg whose api_base is on the
// host of base (an Ollama deployment without api_base is on
// http://localhost:11434). It fails, listing the hosts the config names,
// when none is.
func hostDeployments(cfg *config.Config, base string) ([]*config.Deployment, error) {
	want := hostKey(base)
	if want == "" {
		return nil, fmt.Errorf("--api-base %q is not a URL like http://gpu1:11434", base)
	}
	var out []*config.Deployment
	var hosts []string
	for i := range cfg.ModelList {
		d := &cfg.ModelList[i]
		b := d.LitellmParams.APIBase
		if b == "" && isOllama(d) {
			b = ollama.DefaultAPIBase
		}
		k := hostKey(b)
		if k == "" {
			continue
		}
		if k == want {
			out = append(out, d)
		} else if !slices.Contains(hosts, k) {
			hosts = append(hosts, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no deployment of the config has its api_base on %s (the config's hosts: %s)", want,
			cmp.Or(strings.Join(hosts, ", "), "none"))
	}
	return out, nil
}

// isOllama reports whether d is an Ollama deployment.
func isOllama(d *config.Deployment) bool {
	p, _, _, err := worker.ParseModel(d.LitellmParams.Model)
	return err == nil && p == worker.ProviderOllama
}

// defaultHostSlots is a host's slot budget when --host-slots is not given:
// the largest concurrency of its deployments (each model's
// max_parallel_requests, else the provider's default; --concurrency
// overrides them), so that the host runs no more calls at once than it
// would for any one of its models.
func defaultHostSlots(deps []*config.Deployment, rs *config.RouterSettings, concurrency int) (int, error) {
	if concurrency > 0 {
		return concurrency, nil
	}
	n := 0
	for _, d := range deps {
		wc, err := worker.FromDeployment(d, rs)
		if err != nil {
			return 0, err
		}
		n = max(n, wc.Concurrency)
	}
	return n, nil
}
