package dispatcher

import (
	"cmp"
	"slices"
	"strings"

	"github.com/llmq/llmq/schema"
)

// Demand is a tier's or a model's demand against its capacity: the
// scaling signal (docs/scaling.md). Add GPU-host workers when Queued
// grows while InFlight stays at Slots.
type Demand struct {
	// Name is the tier, or the model.
	Name string `json:"name"`
	// Queued are the jobs waiting in dispatchers; for a model, those of
	// every tier it serves (any of them could go to it).
	Queued int `json:"queued"`
	// InFlight and Slots are the jobs the ready workers hold and can hold
	// at once, from their beats.
	InFlight int `json:"in_flight"`
	Slots    int `json:"slots"`
	// Hosts counts the distinct hosts of the ready workers, HostsWarm
	// those that have the model loaded (every cloud deployment counts as
	// warm).
	Hosts     int `json:"hosts"`
	HostsWarm int `json:"hosts_warm"`
}

// MaxDemandRows bounds the tiers, and the models, ScalingSignal returns
// (heartbeats come from the wire).
const MaxDemandRows = 256

// ScalingSignal computes the demand of each tier and of each model from
// the workers' latest beats (each worker once) and the jobs queued per
// tier, sorted by name, at most MaxDemandRows of each.
func ScalingSignal(workers []schema.Heartbeat, queued map[string]int) (tiers, models []Demand) {
	type acc struct {
		d           Demand
		hosts, warm map[string]bool
		tiers       map[string]bool
	}
	byTier, byModel := map[string]*acc{}, map[string]*acc{}
	get := func(m map[string]*acc, name string) *acc {
		a := m[name]
		if a == nil {
			if len(m) >= MaxDemandRows {
				return nil
			}
			a = &acc{d: Demand{Name: name}, hosts: map[string]bool{}, warm: map[string]bool{}, tiers: map[string]bool{}}
			m[name] = a
		}
		return a
	}
	for t := range queued {
		if a := get(byTier, t); a != nil {
			a.d.Queued = queued[t]
		}
	}
	for i := range workers {
		hb := &workers[i]
		if hb.State != schema.StateReady {
			continue
		}
		host := cmp.Or(hb.Host, hb.Worker)
		accs := []*acc{get(byTier, hb.Tier)}
		if hb.Model != "" {
			accs = append(accs, get(byModel, hb.Model))
		}
		for _, a := range accs {
			if a == nil {
				continue
			}
			a.d.InFlight += hb.InFlight
			a.d.Slots += hb.Capacity
			a.hosts[host] = true
			if !hb.Cold {
				a.warm[host] = true
			}
			a.tiers[hb.Tier] = true
		}
	}
	out := func(m map[string]*acc, model bool) []Demand {
		list := make([]Demand, 0, len(m))
		for _, a := range m {
			a.d.Hosts, a.d.HostsWarm = len(a.hosts), len(a.warm)
			if model {
				for t := range a.tiers {
					a.d.Queued += queued[t]
				}
			}
			list = append(list, a.d)
		}
		slices.SortFunc(list, func(a, b Demand) int { return strings.Compare(a.Name, b.Name) })
		return list
	}
	return out(byTier, false), out(byModel, true)
}
