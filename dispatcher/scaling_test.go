package dispatcher_test

import (
	"fmt"
	"testing"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
)

func TestScalingSignal_PerTierAndPerModel(t *testing.T) {
	t.Parallel()
	beat := func(worker, tier, model, host string, in, capa int, cold bool, state string) schema.Heartbeat {
		return schema.Heartbeat{Worker: worker, Tier: tier, Model: model, Host: host, InFlight: in, Capacity: capa, Cold: cold, State: state}
	}
	workers := []schema.Heartbeat{
		beat("c1", "coder", "qwen", "http://gpu1:11434", 4, 4, false, schema.StateReady),
		beat("c2", "coder", "qwen", "http://gpu2:11434", 1, 4, true, schema.StateReady),
		beat("h2", "chat", "llama", "http://gpu2:11434", 2, 4, false, schema.StateReady),
		beat("q3", "fast", "qwen", "http://gpu3:11434", 0, 4, false, schema.StateReady),
		beat("d1", "coder", "qwen", "http://gpu9:11434", 4, 4, false, schema.StateDraining),
	}
	tiers, models := dispatcher.ScalingSignal(workers, map[string]int{"coder": 7, "chat": 1, "idle": 0})
	want := []dispatcher.Demand{
		{Name: "chat", Queued: 1, InFlight: 2, Slots: 4, Hosts: 1, HostsWarm: 1},
		{Name: "coder", Queued: 7, InFlight: 5, Slots: 8, Hosts: 2, HostsWarm: 1},
		{Name: "fast", InFlight: 0, Slots: 4, Hosts: 1, HostsWarm: 1},
		{Name: "idle"},
	}
	if fmt.Sprint(tiers) != fmt.Sprint(want) {
		t.Errorf("tiers\n got %v\nwant %v", tiers, want)
	}
	wantModels := []dispatcher.Demand{
		{Name: "llama", Queued: 1, InFlight: 2, Slots: 4, Hosts: 1, HostsWarm: 1},
		{Name: "qwen", Queued: 7, InFlight: 5, Slots: 12, Hosts: 3, HostsWarm: 2},
	}
	if fmt.Sprint(models) != fmt.Sprint(wantModels) {
		t.Errorf("models\n got %v\nwant %v", models, wantModels)
	}
}

func TestScalingSignal_BoundsRows(t *testing.T) {
	t.Parallel()
	var workers []schema.Heartbeat
	for i := range 2 * dispatcher.MaxDemandRows {
		workers = append(workers, schema.Heartbeat{Worker: fmt.Sprint("w", i), Tier: fmt.Sprint("t", i), Model: fmt.Sprint("m", i),
			Capacity: 1, State: schema.StateReady})
	}
	tiers, models := dispatcher.ScalingSignal(workers, nil)
	if len(tiers) != dispatcher.MaxDemandRows || len(models) != dispatcher.MaxDemandRows {
		t.Errorf("%d tiers, %d models; want at most %d of each", len(tiers), len(models), dispatcher.MaxDemandRows)
	}
}
