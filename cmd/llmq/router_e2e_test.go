package main

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

// The router features of a LiteLLM config reach llmq up's dispatcher and
// workers: tag routing with a default deployment, and pre-call checks that
// send a prompt too long for the tier to its context_window_fallbacks.
func TestE2E_RouterFeatures_TagsAndPreCallFromConfig(t *testing.T) {
	t.Parallel()
	u := startUp(t, "-c", writeConfig(t, `model_list:
  - model_name: chat
    litellm_params: {model: sim/free, tags: [free]}
    model_info: {id: free}
  - model_name: chat
    litellm_params: {model: sim/paid, tags: [paid]}
    model_info: {id: paid}
  - model_name: chat
    litellm_params: {model: sim/dflt, tags: [default]}
    model_info: {id: dflt, max_input_tokens: 50}
  - model_name: big
    litellm_params: {model: sim/big}
    model_info: {id: big, max_input_tokens: 100000}
router_settings:
  enable_tag_filtering: true
  enable_pre_call_checks: true
  context_window_fallbacks: [{chat: [big]}]
`))
	nc, err := nats.Connect(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := client.New(nc, client.Config{Subjects: broker.Subjects{Prefix: u.Prefix}, Timeout: wait})
	send := func(text string, tags ...string) *schema.Response {
		t.Helper()
		req := &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}, Tags: tags}
		ctx, cancel := contextWithWait()
		defer cancel()
		resp, err := c.Complete(ctx, "chat", req)
		if err != nil {
			t.Fatalf("%q %v: %v", text[:min(len(text), 10)], tags, err)
		}
		return resp
	}
	for range 5 {
		if r := send("hi", "paid"); r.Routing.Deployment != "paid" {
			t.Fatalf("tags [paid] answered by %s", r.Routing.Deployment)
		}
		if r := send("hi"); r.Routing.Deployment != "dflt" {
			t.Fatalf("untagged job answered by %s, want the default deployment", r.Routing.Deployment)
		}
	}
	if r := send(strings.Repeat("lorem ipsum ", 100)); r.Routing.Tier != "big" {
		t.Fatalf("long untagged prompt answered by %s/%s, want the context_window_fallbacks tier big", r.Routing.Tier, r.Routing.Deployment)
	}
}
