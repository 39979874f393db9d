// Package metrics exports llmq's Prometheus metrics: jobs by tier,
// deployment and outcome, call and time-to-first-token histograms, tokens,
// cost, in-flight jobs and queue depths, retries, fallbacks, cooldowns,
// heartbeats and lost workers, and the HTTP gateway's requests.
//
// Each process makes one Metrics (its own registry: nothing global) and
// hands its observers to the components it runs — Dispatcher() to
// dispatcher.Config.Observer, Worker() to worker.Config.Observer, Gateway()
// to gateway.Config.Observer — and the components themselves to
// AddDispatcher and AddWorker, whose state is read at each scrape. Server
// serves /metrics.
//
// Names follow Prometheus conventions (llmq_<component>_<name>_<unit>);
// label values are bounded: tiers and deployments of the fleet, llmq's
// error codes, HTTP statuses.
package metrics
