package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker"
)

// Config configures a Metrics. The zero value works.
type Config struct {
	// Namespace starts every metric name. Default "llmq".
	Namespace string
	// Buckets of the duration histograms, in seconds. Default
	// DefaultBuckets().
	Buckets []float64
	// NoRuntime leaves out the Go runtime and process collectors.
	// Default: included.
	NoRuntime bool
}

// DefaultBuckets returns the default histogram buckets: what an LLM call
// takes, from a cached reply to a long generation, 5 ms to 10 min.
func DefaultBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
}

// UnknownTier is the tier label of jobs for a tier the component does not
// know, so that made-up model names cannot grow the label set.
const UnknownTier = "_unknown"

// OtherCode is the outcome label of an error code llmq does not define.
const OtherCode = "other"

// Metrics holds one process's collectors, in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	workerJobs    *prometheus.CounterVec
	workerCall    *prometheus.HistogramVec
	workerTTFT    *prometheus.HistogramVec
	workerIn      *prometheus.CounterVec
	workerOut     *prometheus.CounterVec
	workerCost    *prometheus.CounterVec
	workerCooling *prometheus.CounterVec

	heartbeats  *prometheus.CounterVec
	workersLost *prometheus.CounterVec
	dispatched  *prometheus.CounterVec
	queueWait   *prometheus.HistogramVec
	answered    *prometheus.CounterVec

	requests    *prometheus.CounterVec
	reqDuration *prometheus.HistogramVec
	reqTTFT     *prometheus.HistogramVec
	reqInFlight prometheus.Gauge
	reqCost     *prometheus.CounterVec

	mu          sync.Mutex
	dispatchers []StatsSource
	workers     []WorkerSource
}

// StatsSource is a dispatcher, as the collectors read it.
type StatsSource interface {
	Stats() dispatcher.Stats
}

// WorkerSource is a worker, as the collectors read it.
type WorkerSource interface {
	Tier() string
	Deployment() string
	Load() (inFlight, capacity int)
	Cooling() (until time.Time, reason string)
}

// New returns the metrics of one process, registered in a new registry.
func New(cfg Config) *Metrics {
	ns := cfg.Namespace
	if ns == "" {
		ns = "llmq"
	}
	buckets := cfg.Buckets
	if len(buckets) == 0 {
		buckets = DefaultBuckets()
	}
	counter := func(sub, name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	histogram := func(sub, name, help string, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help, Buckets: buckets}, labels)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),

		workerJobs:    counter("worker", "jobs_total", "Jobs workers ended, by outcome: ok, or the error code (an attempt bounced for a retry counts with its code).", "tier", "deployment", "outcome"),
		workerCall:    histogram("worker", "call_duration_seconds", "Duration of successful provider calls.", "tier", "deployment"),
		workerTTFT:    histogram("worker", "ttft_seconds", "Time to the first token of successful streamed calls.", "tier", "deployment"),
		workerIn:      counter("worker", "input_tokens_total", "Prompt tokens of successful calls, as the provider counted them.", "tier", "deployment"),
		workerOut:     counter("worker", "output_tokens_total", "Completion tokens of successful calls, as the provider counted them.", "tier", "deployment"),
		workerCost:    counter("worker", "cost_usd_total", "Cost of successful calls in US dollars, from input_cost_per_token and output_cost_per_token.", "tier", "deployment"),
		workerCooling: counter("worker", "cooldowns_total", "Rests a deployment took after failures, by the error code that started them.", "tier", "deployment", "reason"),

		heartbeats:  counter("dispatcher", "heartbeats_total", "Worker heartbeats dispatchers received.", "tier"),
		workersLost: counter("dispatcher", "workers_lost_total", "Workers dropped after three missed heartbeats.", "tier"),
		dispatched:  counter("dispatcher", "jobs_dispatched_total", "Jobs forwarded to a worker (retries and re-dispatches included).", "tier"),
		queueWait:   histogram("dispatcher", "queue_wait_seconds", "Time jobs waited in a dispatcher for a free worker.", "tier"),
		answered:    counter("dispatcher", "errors_total", "Jobs a dispatcher answered with an error, by error code.", "tier", "code"),

		requests:    counter("gateway", "requests_total", "Chat-completion requests the HTTP gateway answered, by HTTP status.", "tier", "stream", "status"),
		reqDuration: histogram("gateway", "request_duration_seconds", "Duration of chat-completion requests, to the last byte.", "tier", "stream"),
		reqTTFT:     histogram("gateway", "ttft_seconds", "Time to the first streamed chunk sent to the HTTP client.", "tier"),
		reqInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "gateway", Name: "in_flight_requests", Help: "Chat-completion requests being served."}),
		reqCost:     counter("gateway", "cost_usd_total", "Cost in US dollars of the completions the gateway returned.", "tier"),
	}
	m.reg.MustRegister(
		m.workerJobs, m.workerCall, m.workerTTFT, m.workerIn, m.workerOut, m.workerCost, m.workerCooling,
		m.heartbeats, m.workersLost, m.dispatched, m.queueWait, m.answered,
		m.requests, m.reqDuration, m.reqTTFT, m.reqInFlight, m.reqCost,
		newSourceCollector(ns, m),
		newScalingCollector(ns, m),
	)
	if !cfg.NoRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry the metrics live in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// AddDispatcher exports d's Stats: jobs received, retries, fallbacks,
// queue depths and the fleet as d sees it.
func (m *Metrics) AddDispatcher(d StatsSource) {
	m.mu.Lock()
	m.dispatchers = append(m.dispatchers, d)
	m.mu.Unlock()
}

// AddWorker exports w's in-flight jobs, capacity and cooldown.
func (m *Metrics) AddWorker(w WorkerSource) {
	m.mu.Lock()
	m.workers = append(m.workers, w)
	m.mu.Unlock()
}

// Dispatcher returns the observer to set as dispatcher.Config.Observer.
func (m *Metrics) Dispatcher() dispatcher.Observer { return dispatcherObserver{m} }

// Worker returns the observer to set as worker.Config.Observer.
func (m *Metrics) Worker() worker.Observer { return workerObserver{m} }

// Gateway returns the observer to set as gateway.Config.Observer.
func (m *Metrics) Gateway() gateway.Observer { return gatewayObserver{m} }

type workerObserver struct{ m *Metrics }

func (o workerObserver) JobDone(r worker.JobReport) {
	m := o.m
	outcome := r.Outcome
	if outcome != worker.OutcomeOK && outcome != worker.OutcomeDropped {
		outcome = code(outcome)
	}
	m.workerJobs.WithLabelValues(r.Tier, r.Deployment, outcome).Inc()
	if r.Outcome != worker.OutcomeOK {
		return
	}
	m.workerIn.WithLabelValues(r.Tier, r.Deployment).Add(float64(r.Usage.PromptTokens))
	m.workerOut.WithLabelValues(r.Tier, r.Deployment).Add(float64(r.Usage.CompletionTokens))
	if rt := r.Routing; rt != nil {
		m.workerCall.WithLabelValues(r.Tier, r.Deployment).Observe(rt.CallMs / 1000)
		if rt.TTFTMs > 0 {
			m.workerTTFT.WithLabelValues(r.Tier, r.Deployment).Observe(rt.TTFTMs / 1000)
		}
		if rt.CostUSD > 0 {
			m.workerCost.WithLabelValues(r.Tier, r.Deployment).Add(rt.CostUSD)
		}
	}
}

func (o workerObserver) CooledDown(tier, deployment, reason string, _ time.Duration) {
	o.m.workerCooling.WithLabelValues(tier, deployment, code(reason)).Inc()
}

type dispatcherObserver struct{ m *Metrics }

func (o dispatcherObserver) Heartbeat(hb *schema.Heartbeat) {
	o.m.heartbeats.WithLabelValues(hb.Tier).Inc()
}

func (o dispatcherObserver) WorkerLost(tier, _ string) {
	o.m.workersLost.WithLabelValues(tier).Inc()
}

func (o dispatcherObserver) Dispatched(tier string, queued time.Duration) {
	o.m.dispatched.WithLabelValues(tier).Inc()
	o.m.queueWait.WithLabelValues(tier).Observe(queued.Seconds())
}

func (o dispatcherObserver) Answered(tier, c string) {
	o.m.answered.WithLabelValues(tierLabel(tier), code(c)).Inc()
}

type gatewayObserver struct{ m *Metrics }

func (o gatewayObserver) RequestStarted() { o.m.reqInFlight.Inc() }

func (o gatewayObserver) RequestDone(r gateway.RequestReport) {
	m := o.m
	m.reqInFlight.Dec()
	tier, stream := tierLabel(r.Tier), "false"
	if r.Stream {
		stream = "true"
	}
	m.requests.WithLabelValues(tier, stream, statusLabel(r.Status)).Inc()
	m.reqDuration.WithLabelValues(tier, stream).Observe(r.Duration.Seconds())
	if r.TTFT > 0 {
		m.reqTTFT.WithLabelValues(tier).Observe(r.TTFT.Seconds())
	}
	if r.Routing != nil && r.Routing.CostUSD > 0 {
		m.reqCost.WithLabelValues(tier).Add(r.Routing.CostUSD)
	}
}

func tierLabel(t string) string {
	if t == "" {
		return UnknownTier
	}
	return t
}

// code bounds an error code label to the codes llmq defines.
func code(c string) string {
	switch c {
	case schema.CodeBadRequest, schema.CodeUnknownTier, schema.CodePayloadTooLarge, schema.CodeAuthentication,
		schema.CodeNotFound, schema.CodeContextWindowExceeded, schema.CodeContentPolicy, schema.CodeRateLimited,
		schema.CodeOverloaded, schema.CodeNoDeployments, schema.CodeProviderError, schema.CodeConnection,
		schema.CodeTimeout, schema.CodeCancelled, schema.CodeInternal, schema.CodeCoolingDown:
		return c
	}
	return OtherCode
}

// statusLabel is the HTTP status as a label: the codes the gateway sends,
// else the status class ("5xx").
// (Constants: strconv.Itoa allocates for every status over 99, once per
// request.)
func statusLabel(s int) string {
	switch s {
	case 200:
		return "200"
	case 400:
		return "400"
	case 401:
		return "401"
	case 404:
		return "404"
	case 405:
		return "405"
	case 413:
		return "413"
	case 429:
		return "429"
	case 499:
		return "499"
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	if s >= 100 && s < 600 {
		return string(rune('0'+s/100)) + "xx"
	}
	return "other"
}
