package schema

// Worker states reported in heartbeats.
const (
	StateReady    = "ready"
	StateDraining = "draining"
	// StateStopped is the last beat of a worker that leaves cleanly; a
	// dispatcher forgets it at once instead of waiting for missed beats.
	StateStopped = "stopped"
)

// Heartbeat is a worker's state, published at a fixed interval, whenever
// a slot frees, and, once several dispatchers send to the worker, whenever
// it accepts a job. Dispatchers learn the fleet from heartbeats alone.
type Heartbeat struct {
	Worker     string `json:"worker" msgpack:"worker"`
	Tier       string `json:"tier" msgpack:"tier"`
	Deployment string `json:"deployment" msgpack:"deployment"`
	Provider   string `json:"provider" msgpack:"provider"`
	Model      string `json:"model" msgpack:"model"`
	// Host is the backend the worker calls (its api_base), without secrets.
	Host string `json:"host,omitempty" msgpack:"host,omitempty"`
	// Subject is where the worker takes jobs.
	Subject string `json:"subject" msgpack:"subject"`
	State   string `json:"state" msgpack:"state"`
	// Seq increases with every beat of one worker.
	Seq uint64 `json:"seq" msgpack:"seq"`
	// IntervalMs is the beat interval; a dispatcher drops a worker after
	// three intervals of silence.
	IntervalMs int64 `json:"interval_ms" msgpack:"interval_ms"`
	Capacity   int   `json:"capacity" msgpack:"capacity"`
	InFlight   int   `json:"in_flight" msgpack:"in_flight"`
	// Weight is the deployment's shuffle weight (weight, else rpm, else tpm;
	// 0 when none is set).
	Weight float64 `json:"weight,omitempty" msgpack:"weight,omitempty"`
	// Order is the deployment's LiteLLM order (lower first; 0 = unset).
	Order int `json:"order,omitempty" msgpack:"order,omitempty"`
	// LatencyMs is the median call latency over the recent window, 0 when
	// the worker has not finished a job in it.
	LatencyMs float64 `json:"latency_ms" msgpack:"latency_ms"`
	// MsPerToken is the median latency per output token in the window.
	MsPerToken float64 `json:"ms_per_token" msgpack:"ms_per_token"`
	// Samples is how many calls the window holds.
	Samples int `json:"samples" msgpack:"samples"`
	// Completed and Failed count jobs since the worker started.
	Completed uint64 `json:"completed" msgpack:"completed"`
	Failed    uint64 `json:"failed" msgpack:"failed"`
	// Received counts, per dispatcher id, the jobs that dispatcher sent this
	// worker. A dispatcher subtracts it from its own count of jobs sent to
	// know how many of its jobs the beat does not yet include.
	Received map[string]uint64 `json:"received,omitempty" msgpack:"received,omitempty"`
	// Jobs lists, per dispatcher id, the Llmq-Job-Seq numbers of that
	// dispatcher's jobs the worker holds; a dispatcher dispatches again the
	// jobs of a lost worker that it has not seen finish.
	Jobs map[string][]uint64 `json:"jobs,omitempty" msgpack:"jobs,omitempty"`
	// QueueAgeUs is, per dispatcher id, how long (µs, when the beat was
	// taken) the oldest job that dispatcher may hold queued for the
	// worker's tier has waited, as the last job it sent here tells: that
	// job's HeaderQueueWaitUs plus the time since it arrived, or, when it
	// left no job waiting, the time since it arrived (any job queued since
	// is younger). Listed for the dispatchers that hold jobs on the worker
	// or sent one within its beat interval.
	QueueAgeUs map[string]int64 `json:"queue_age_us,omitempty" msgpack:"queue_age_us,omitempty"`
	// CoolingUntilMs, when in the future, is when the worker's deployment
	// ends the rest it takes after failures (Unix ms); CoolingReason is the
	// error code that caused it.
	CoolingUntilMs int64  `json:"cooling_until_ms,omitempty" msgpack:"cooling_until_ms,omitempty"`
	CoolingReason  string `json:"cooling_reason,omitempty" msgpack:"cooling_reason,omitempty"`

	// RPM and TPM are the deployment's usage limits (LiteLLM's rpm and tpm)
	// the worker enforces on its own calls: calls and tokens per sliding
	// window of RateWindowMs (60 s unless a test shortens it); 0 = none.
	RPM int64 `json:"rpm,omitempty" msgpack:"rpm,omitempty"`
	TPM int64 `json:"tpm,omitempty" msgpack:"tpm,omitempty"`
	// RPMUsed and TPMUsed are the window's usage when the beat was taken:
	// the calls started in the last window plus the jobs the worker holds
	// that have not started yet, and their tokens (a finished call's usage,
	// a running call's estimate, the mean for a job not started).
	RPMUsed int64 `json:"rpm_used,omitempty" msgpack:"rpm_used,omitempty"`
	TPMUsed int64 `json:"tpm_used,omitempty" msgpack:"tpm_used,omitempty"`
	// RateFreesMs is when (Unix ms) the oldest call of the window leaves
	// it; 0 when the window is empty.
	RateFreesMs int64 `json:"rate_frees_ms,omitempty" msgpack:"rate_frees_ms,omitempty"`
	// RateWindowMs is the window's length; omitted when it is 60 s.
	RateWindowMs int64 `json:"rate_window_ms,omitempty" msgpack:"rate_window_ms,omitempty"`
	// InputCostPerToken and OutputCostPerToken are the deployment's prices
	// (US dollars; 0 = not set), for cost-based routing.
	InputCostPerToken  float64 `json:"input_cost_per_token,omitempty" msgpack:"input_cost_per_token,omitempty"`
	OutputCostPerToken float64 `json:"output_cost_per_token,omitempty" msgpack:"output_cost_per_token,omitempty"`
	// Tags are the deployment's litellm_params.tags, for tag routing (at
	// most MaxTags of MaxTagLen bytes; receivers drop the rest).
	Tags []string `json:"tags,omitempty" msgpack:"tags,omitempty"`
	// MaxInputTokens is the deployment's context window when the worker
	// runs pre-call checks (router_settings.enable_pre_call_checks), 0
	// otherwise or when unknown: a dispatcher does not send it a job whose
	// prompt a worker found longer.
	MaxInputTokens int `json:"max_input_tokens,omitempty" msgpack:"max_input_tokens,omitempty"`
	// Mode is ModeEmbedding for a worker that serves embedding jobs
	// (model_info.mode embedding), empty for one that serves chat jobs.
	Mode string `json:"mode,omitempty" msgpack:"mode,omitempty"`

	// Residency, from workers whose host loads models in and out of
	// memory (Ollama): Cold says the host has not loaded the worker's
	// model, so a job sent there waits for a load first; Loaded lists the
	// models the host has loaded (at most MaxLoadedModels names of at
	// most MaxModelNameLen bytes; receivers drop the rest); LoadMs is how
	// long the worker's recent cold calls took to load the model (0:
	// unknown). A worker that cannot tell sends none of them.
	Cold   bool     `json:"cold,omitempty" msgpack:"cold,omitempty"`
	Loaded []string `json:"loaded,omitempty" msgpack:"loaded,omitempty"`
	LoadMs float64  `json:"load_ms,omitempty" msgpack:"load_ms,omitempty"`
	// HostSlots and HostInFlight, from a worker that shares its host's
	// slot budget with other deployments on the host (llmq worker
	// --api-base serving every deployment of one host), are the budget
	// and the jobs running on the host across them; 0 when there is no
	// host budget.
	HostSlots    int `json:"host_slots,omitempty" msgpack:"host_slots,omitempty"`
	HostInFlight int `json:"host_in_flight,omitempty" msgpack:"host_in_flight,omitempty"`
}

// Bounds of a heartbeat's residency (Heartbeat.Loaded).
const (
	MaxLoadedModels = 64
	MaxModelNameLen = 256
)

// ModeEmbedding is the Heartbeat.Mode of a worker serving embedding jobs.
const ModeEmbedding = "embedding"
