package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
)

// scalingCollector exports the scaling signal (dispatcher.ScalingSignal)
// of the dispatchers in this process at each scrape: per tier and per
// model, the jobs queued and in flight, the slots, and the hosts that
// have the model loaded. docs/scaling.md scales GPU-host workers on it.
type scalingCollector struct {
	m *Metrics

	tierQueued, tierInFlight, tierSlots, tierHosts, tierWarm      *prometheus.Desc
	modelQueued, modelInFlight, modelSlots, modelHosts, modelWarm *prometheus.Desc
}

func newScalingCollector(ns string, m *Metrics) *scalingCollector {
	d := func(name, help, label string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "scaling", name), help, []string{label}, nil)
	}
	return &scalingCollector{
		m:             m,
		tierQueued:    d("tier_queued_jobs", "Jobs of the tier waiting in this process's dispatchers (interactive and batch).", "tier"),
		tierInFlight:  d("tier_in_flight_jobs", "Jobs the tier's ready workers hold, from their heartbeats.", "tier"),
		tierSlots:     d("tier_slots", "Jobs the tier's ready workers can hold at once.", "tier"),
		tierHosts:     d("tier_hosts", "Distinct hosts of the tier's ready workers.", "tier"),
		tierWarm:      d("tier_hosts_warm", "Hosts of the tier's ready workers that have its model loaded (cloud deployments count as warm).", "tier"),
		modelQueued:   d("model_queued_jobs", "Jobs waiting for any tier the model serves.", "model"),
		modelInFlight: d("model_in_flight_jobs", "Jobs the model's ready workers hold.", "model"),
		modelSlots:    d("model_slots", "Jobs the model's ready workers can hold at once.", "model"),
		modelHosts:    d("model_hosts", "Distinct hosts of the model's ready workers.", "model"),
		modelWarm:     d("model_hosts_warm", "Hosts that have the model loaded.", "model"),
	}
}

func (c *scalingCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tierQueued, c.tierInFlight, c.tierSlots, c.tierHosts, c.tierWarm,
		c.modelQueued, c.modelInFlight, c.modelSlots, c.modelHosts, c.modelWarm} {
		ch <- d
	}
}

func (c *scalingCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	ds := append([]StatsSource(nil), c.m.dispatchers...)
	c.m.mu.Unlock()
	if len(ds) == 0 {
		return
	}
	queued := map[string]int{}
	seen := map[string]bool{}
	var workers []schema.Heartbeat
	for _, d := range ds {
		for _, t := range d.Stats().Tiers {
			queued[t.Name] += t.Queued + t.BatchQueued
			for _, hb := range t.Workers {
				if !seen[hb.Worker] { // dispatchers of one process see the same fleet
					seen[hb.Worker] = true
					workers = append(workers, hb)
				}
			}
		}
	}
	tiers, models := dispatcher.ScalingSignal(workers, queued)
	emit := func(rows []dispatcher.Demand, q, in, slots, hosts, warm *prometheus.Desc) {
		for _, r := range rows {
			for _, v := range []struct {
				d *prometheus.Desc
				n int
			}{{q, r.Queued}, {in, r.InFlight}, {slots, r.Slots}, {hosts, r.Hosts}, {warm, r.HostsWarm}} {
				ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, float64(v.n), r.Name)
			}
		}
	}
	emit(tiers, c.tierQueued, c.tierInFlight, c.tierSlots, c.tierHosts, c.tierWarm)
	emit(models, c.modelQueued, c.modelInFlight, c.modelSlots, c.modelHosts, c.modelWarm)
}
