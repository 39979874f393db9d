package metrics_test

import (
	"testing"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/metrics"
	"github.com/llmq/llmq/metrics/metricstest"
	"github.com/llmq/llmq/schema"
)

func TestScaling_PerTierAndModelFromTheDispatchers(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Config{NoRuntime: true})
	fleet := []schema.Heartbeat{
		{Worker: "c1", Tier: "coder", Model: "qwen", Host: "http://gpu1:11434", State: schema.StateReady, InFlight: 4, Capacity: 4},
		{Worker: "c2", Tier: "coder", Model: "qwen", Host: "http://gpu2:11434", State: schema.StateReady, Capacity: 4, Cold: true},
	}
	stats := dispatcher.Stats{Tiers: []dispatcher.TierStats{{Name: "coder", Queued: 5, BatchQueued: 1, Workers: fleet}}}
	// Two dispatchers in one process: queues add up, the fleet is one.
	m.AddDispatcher(fakeDispatcher{stats})
	m.AddDispatcher(fakeDispatcher{stats})
	s := metricstest.Gather(t, m.Registry())
	for _, w := range []struct {
		name   string
		labels []string
		value  float64
	}{
		{"llmq_scaling_tier_queued_jobs", []string{"tier", "coder"}, 12},
		{"llmq_scaling_tier_in_flight_jobs", []string{"tier", "coder"}, 4},
		{"llmq_scaling_tier_slots", []string{"tier", "coder"}, 8},
		{"llmq_scaling_tier_hosts", []string{"tier", "coder"}, 2},
		{"llmq_scaling_tier_hosts_warm", []string{"tier", "coder"}, 1},
		{"llmq_scaling_model_queued_jobs", []string{"model", "qwen"}, 12},
		{"llmq_scaling_model_slots", []string{"model", "qwen"}, 8},
		{"llmq_scaling_model_hosts_warm", []string{"model", "qwen"}, 1},
	} {
		if got := s.Sum(w.name, w.labels...); got != w.value {
			t.Errorf("%s%v = %g, want %g", w.name, w.labels, got, w.value)
		}
	}
}
