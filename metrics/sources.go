package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmq/llmq/schema"
)

// sourceCollector reads the dispatchers' Stats and the workers' load at
// each scrape: the values exist already, so there is nothing to hook.
type sourceCollector struct {
	m *Metrics

	received, dropped, retries, fallbacks, redispatched *prometheus.Desc
	queueDepth, workers, fleetInFlight, fleetCapacity   *prometheus.Desc
	inFlight, capacity, cooling                         *prometheus.Desc
}

func newSourceCollector(ns string, m *Metrics) *sourceCollector {
	d := func(sub, name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, sub, name), help, labels, nil)
	}
	return &sourceCollector{
		m:             m,
		received:      d("dispatcher", "jobs_received_total", "Jobs dispatchers received from producers."),
		dropped:       d("dispatcher", "jobs_dropped_total", "Jobs dropped for want of a reply subject."),
		retries:       d("dispatcher", "retries_total", "Failed jobs sent again in their tier."),
		fallbacks:     d("dispatcher", "fallbacks_total", "Failed jobs moved to a fallback tier."),
		redispatched:  d("dispatcher", "redispatched_total", "Jobs sent again after their worker was lost."),
		queueDepth:    d("dispatcher", "queue_depth_jobs", "Jobs waiting in dispatchers for a free worker.", "tier", "priority"),
		workers:       d("dispatcher", "workers", "Workers dispatchers know, by state (ready, draining, cooling).", "tier", "state"),
		fleetInFlight: d("dispatcher", "in_flight_jobs", "Jobs the tier's workers hold, from their last heartbeats.", "tier"),
		fleetCapacity: d("dispatcher", "capacity_jobs", "Jobs the tier's workers can run at once, from their last heartbeats.", "tier"),
		inFlight:      d("worker", "in_flight_jobs", "Jobs this process's workers hold.", "tier", "deployment"),
		capacity:      d("worker", "capacity_jobs", "Jobs this process's workers can run at once.", "tier", "deployment"),
		cooling:       d("worker", "cooling_down", "1 while the deployment rests after failures.", "tier", "deployment"),
	}
}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.received, c.dropped, c.retries, c.fallbacks, c.redispatched,
		c.queueDepth, c.workers, c.fleetInFlight, c.fleetCapacity, c.inFlight, c.capacity, c.cooling} {
		ch <- d
	}
}

type tierPriority struct{ tier, priority string }
type tierState struct{ tier, state string }
type tierDeployment struct{ tier, deployment string }

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	ds := append([]StatsSource(nil), c.m.dispatchers...)
	ws := append([]WorkerSource(nil), c.m.workers...)
	c.m.mu.Unlock()
	now := time.Now()

	if len(ds) > 0 {
		var received, dropped, retries, fallbacks, redispatched uint64
		depth := map[tierPriority]int{}
		states := map[tierState]int{}
		inFlight, capacity := map[string]int{}, map[string]int{}
		for _, d := range ds {
			s := d.Stats()
			received += s.Received
			dropped += s.NoReply
			retries += s.Retries
			fallbacks += s.Fallbacks
			redispatched += s.Redispatched
			for _, t := range s.Tiers {
				depth[tierPriority{t.Name, "interactive"}] += t.Queued
				depth[tierPriority{t.Name, "batch"}] += t.BatchQueued
				for _, st := range []string{schema.StateReady, schema.StateDraining, "cooling"} {
					states[tierState{t.Name, st}] += 0
				}
				inFlight[t.Name] += 0
				capacity[t.Name] += 0
				for _, hb := range t.Workers {
					state := hb.State
					if state == schema.StateReady && hb.CoolingUntilMs > now.UnixMilli() {
						state = "cooling"
					}
					states[tierState{t.Name, state}]++
					inFlight[t.Name] += hb.InFlight
					capacity[t.Name] += hb.Capacity
				}
			}
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
		}
		counter(c.received, received)
		counter(c.dropped, dropped)
		counter(c.retries, retries)
		counter(c.fallbacks, fallbacks)
		counter(c.redispatched, redispatched)
		for k, v := range depth {
			ch <- prometheus.MustNewConstMetric(c.queueDepth, prometheus.GaugeValue, float64(v), k.tier, k.priority)
		}
		for k, v := range states {
			ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(v), k.tier, k.state)
		}
		for t, v := range inFlight {
			ch <- prometheus.MustNewConstMetric(c.fleetInFlight, prometheus.GaugeValue, float64(v), t)
			ch <- prometheus.MustNewConstMetric(c.fleetCapacity, prometheus.GaugeValue, float64(capacity[t]), t)
		}
	}

	load := map[tierDeployment][3]int{}
	for _, w := range ws {
		k := tierDeployment{w.Tier(), w.Deployment()}
		in, capa := w.Load()
		v := load[k]
		v[0] += in
		v[1] += capa
		if until, _ := w.Cooling(); until.After(now) {
			v[2] = 1
		}
		load[k] = v
	}
	for k, v := range load {
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(v[0]), k.tier, k.deployment)
		ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(v[1]), k.tier, k.deployment)
		ch <- prometheus.MustNewConstMetric(c.cooling, prometheus.GaugeValue, float64(v[2]), k.tier, k.deployment)
	}
}
