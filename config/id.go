package config

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/llmq/llmq/broker"
)

// Deployment ids without model_info.id.
//
// LiteLLM (Router._generate_model_id) hashes the model_name and every
// litellm_params key and value, so two deployments that differ only in
// their api_key are two deployments: the standard "same model, several
// keys" pattern. llmq hashes the same things, with two differences, both
// so that every process computes the same id from the same file:
//
//   - values are hashed as written, before os.environ/ is resolved: a
//     dispatcher without a worker's keys, and a worker after a key
//     rotation, agree on the id (LiteLLM hashes the resolved values, so
//     its ids change with the environment);
//   - keys are hashed in sorted order, so reordering a deployment's lines
//     does not change its id; a null value counts as absent.
//
// The id is "<model_name as a subject token>-<8 hex digits>". A key
// written in the file is part of the hash but cannot be recovered from 32
// bits of it; it is never shown.

// hashID is the id of a deployment from its model_name and its
// litellm_params node as written.
func hashID(modelName string, params *yaml.Node) string {
	var b strings.Builder
	b.WriteString(modelName)
	b.WriteByte(0)
	canonical(&b, params, 0)
	h := sha256.Sum256([]byte(b.String()))
	return broker.Token(modelName) + "-" + hex.EncodeToString(h[:4])
}

// canonical writes n so that equal values as written give equal text.
func canonical(b *strings.Builder, n *yaml.Node, depth int) {
	if n == nil || depth > 64 {
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		canonical(b, n.Alias, depth+1)
	case yaml.ScalarNode:
		b.WriteString(strconv.Quote(n.Value))
	case yaml.SequenceNode:
		b.WriteByte('[')
		for _, c := range n.Content {
			canonical(b, c, depth+1)
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case yaml.MappingNode:
		type kv struct {
			k string
			v *yaml.Node
		}
		var pairs []kv
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; !isNull(v) {
				pairs = append(pairs, kv{n.Content[i].Value, v})
			}
		}
		slices.SortFunc(pairs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		b.WriteByte('{')
		for _, p := range pairs {
			b.WriteString(strconv.Quote(p.k))
			b.WriteByte(':')
			canonical(b, p.v, depth+1)
			b.WriteByte(',')
		}
		b.WriteByte('}')
	}
}

func isNull(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Style == 0 && (n.Value == "" || n.Value == "~" || n.Value == "null"))
}

// paramsNode is the litellm_params a deployment built from flags would
// have in a file: its non-zero fields, numbers written as YAML writes
// them, time-outs in seconds. So NewDeployment's id equals the id of a
// file deployment with the same keys and values.
func paramsNode(p LitellmParams) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k, v string) {
		if v != "" && v != "0" {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
		}
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	add("model", p.Model)
	add("api_base", p.APIBase)
	add("api_key", p.APIKey)
	add("api_version", p.APIVersion)
	add("max_parallel_requests", strconv.Itoa(p.MaxParallelRequests))
	add("weight", f(p.Weight))
	add("rpm", strconv.Itoa(p.RPM))
	add("tpm", strconv.Itoa(p.TPM))
	add("order", strconv.Itoa(p.Order))
	add("timeout", f(p.Timeout.D().Seconds()))
	add("stream_timeout", f(p.StreamTimeout.D().Seconds()))
	add("max_tokens", strconv.Itoa(p.MaxTokens))
	return n
}
