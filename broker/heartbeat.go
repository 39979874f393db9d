package broker

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/llmq/llmq/schema"
)

// Bounds a received heartbeat is clamped to. A heartbeat may come from any
// client of the NATS server: DecodeHeartbeat refuses one that names
// subjects it may not, and clamps every number, so no beat can make a
// reader allocate without bound, wait forever or route jobs elsewhere.
const (
	// MaxCapacity is the most slots a worker may report.
	MaxCapacity = 4096
	// MinBeatInterval and MaxBeatInterval bound a beat's interval (a
	// dispatcher drops a worker after three intervals of silence).
	MinBeatInterval = 10 * time.Millisecond
	MaxBeatInterval = time.Minute
	// MaxCooling bounds how far ahead of the receiver's clock a beat's
	// cooling_until may lie. A worker that rests longer (a long Retry-After)
	// says so again in every beat, so the clamp never ends a real rest early.
	MaxCooling = 10 * time.Minute
	// MaxBeatDispatchers bounds the dispatchers a beat's received and jobs
	// maps may name, and MaxBeatJobs the job numbers it may list in all.
	MaxBeatDispatchers = 256
	MaxBeatJobs        = 4 * MaxCapacity
	// MaxQueueAge bounds the ages a beat's queue_age_us reports (and a
	// job's Llmq-Queue-Wait-Us): older queues are all as old.
	MaxQueueAge = time.Hour
	// MaxHeartbeatBytes is the largest heartbeat read.
	MaxHeartbeatBytes = 256 << 10
	// MaxRateWindow bounds a worker's usage window (rate_window_ms), and
	// how far ahead of the receiver's clock rate_frees_ms may lie.
	MaxRateWindow = 10 * time.Minute
	// MaxRate bounds the rpm and tpm limits and usage a beat may report.
	MaxRate = 1e12
	// MaxCostPerToken bounds the prices a beat may report (US dollars).
	MaxCostPerToken = 1e3
	// MaxBeatTags and MaxTagLen bound a beat's tags: the first MaxBeatTags
	// tags of at most MaxTagLen bytes are kept, the rest dropped.
	MaxBeatTags = schema.MaxTags
	MaxTagLen   = schema.MaxTagLen
	// MaxInputTokens bounds a beat's max_input_tokens.
	MaxInputTokens = 100_000_000
	// MaxBeatLoaded and MaxLoadedNameLen bound a beat's loaded models: the
	// first MaxBeatLoaded names of at most MaxLoadedNameLen bytes are
	// kept, the rest dropped. MaxLoadMs bounds load_ms.
	MaxBeatLoaded    = schema.MaxLoadedModels
	MaxLoadedNameLen = schema.MaxModelNameLen
	MaxLoadMs        = 3_600_000
)

// ErrBadHeartbeat wraps every reason a heartbeat is refused.
var ErrBadHeartbeat = errors.New("bad heartbeat")

// DecodeHeartbeat decodes a heartbeat received on subject at now, checks
// that it is the shape a worker sends and clamps its numbers:
//   - the body is checked for hostile lengths before it is decoded
//     (schema.Codec.Unmarshal);
//   - worker is a valid worker id, received on <prefix>.hb.<worker>, and its
//     job subject is exactly <prefix>.w.<worker>;
//   - tier is a valid tier, state one of ready, draining, stopped, and the
//     other names at most MaxNameLen bytes;
//   - capacity is 1…MaxCapacity, in_flight 0…2×capacity, interval_ms
//     within MinBeatInterval…MaxBeatInterval, weight, order and latencies
//     finite and not negative, cooling_until_ms at most MaxCooling ahead;
//   - received, jobs and queue_age_us name at most MaxBeatDispatchers
//     dispatchers, and jobs MaxBeatJobs jobs; queue_age_us's ages are
//     0…MaxQueueAge (a dispatcher's id of more than MaxWorkerIDLen bytes
//     in any of them is refused);
//   - rpm, tpm and their usage are 0…MaxRate, rate_window_ms at most
//     MaxRateWindow, rate_frees_ms at most MaxRateWindow ahead, prices
//     finite and 0…MaxCostPerToken.
//   - tags keep at most MaxBeatTags non-empty, distinct tags of at most
//     MaxTagLen bytes, max_input_tokens is 0…MaxInputTokens;
//   - a mode other than "embedding" is cleared (chat);
//   - loaded keeps at most MaxBeatLoaded non-empty, distinct names of at
//     most MaxLoadedNameLen bytes, load_ms is finite and 0…MaxLoadMs,
//     host_slots 0…MaxCapacity and host_in_flight 0…2×host_slots.
//
// Every refusal wraps ErrBadHeartbeat.
func (s Subjects) DecodeHeartbeat(subject string, data []byte, now time.Time) (schema.Heartbeat, error) {
	var hb schema.Heartbeat
	if len(data) > MaxHeartbeatBytes {
		return hb, fmt.Errorf("%w: %d bytes", ErrBadHeartbeat, len(data))
	}
	if err := schema.MsgPack.Unmarshal(data, &hb); err != nil {
		return hb, fmt.Errorf("%w: %v", ErrBadHeartbeat, err)
	}
	if err := s.checkHeartbeat(subject, &hb); err != nil {
		return hb, fmt.Errorf("%w: %v", ErrBadHeartbeat, err)
	}
	clampHeartbeat(&hb, now)
	return hb, nil
}

func (s Subjects) checkHeartbeat(subject string, hb *schema.Heartbeat) error {
	switch {
	case !ValidWorkerID(hb.Worker):
		return fmt.Errorf("worker id %.64q is not a token of at most %d bytes", hb.Worker, MaxWorkerIDLen)
	case subject != s.Heartbeat(hb.Worker):
		return fmt.Errorf("worker %s beat on %.64q", hb.Worker, subject)
	case hb.Subject != s.Worker(hb.Worker):
		return fmt.Errorf("worker %s names job subject %.64q, want %s", hb.Worker, hb.Subject, s.Worker(hb.Worker))
	case !ValidGroup(hb.Tier):
		return fmt.Errorf("worker %s: tier %.64q is not a valid tier or pattern", hb.Worker, hb.Tier)
	case hb.State != schema.StateReady && hb.State != schema.StateDraining && hb.State != schema.StateStopped:
		return fmt.Errorf("worker %s: unknown state %.32q", hb.Worker, hb.State)
	case hb.Capacity <= 0:
		return fmt.Errorf("worker %s: capacity %d", hb.Worker, hb.Capacity)
	case len(hb.Received) > MaxBeatDispatchers || len(hb.Jobs) > MaxBeatDispatchers || len(hb.QueueAgeUs) > MaxBeatDispatchers:
		return fmt.Errorf("worker %s: %d/%d/%d dispatchers named, at most %d", hb.Worker, len(hb.Received), len(hb.Jobs), len(hb.QueueAgeUs), MaxBeatDispatchers)
	}
	for _, v := range []string{hb.Deployment, hb.Provider, hb.Model, hb.Host, hb.CoolingReason} {
		if len(v) > MaxNameLen {
			return fmt.Errorf("worker %s: a name of %d bytes, at most %d", hb.Worker, len(v), MaxNameLen)
		}
	}
	jobs := 0
	for d, seqs := range hb.Jobs {
		if len(d) > MaxWorkerIDLen {
			return fmt.Errorf("worker %s: dispatcher id of %d bytes", hb.Worker, len(d))
		}
		jobs += len(seqs)
	}
	for d := range hb.Received {
		if len(d) > MaxWorkerIDLen {
			return fmt.Errorf("worker %s: dispatcher id of %d bytes", hb.Worker, len(d))
		}
	}
	for d := range hb.QueueAgeUs {
		if len(d) > MaxWorkerIDLen {
			return fmt.Errorf("worker %s: dispatcher id of %d bytes", hb.Worker, len(d))
		}
	}
	if jobs > MaxBeatJobs {
		return fmt.Errorf("worker %s: %d jobs listed, at most %d", hb.Worker, jobs, MaxBeatJobs)
	}
	return nil
}

func clampHeartbeat(hb *schema.Heartbeat, now time.Time) {
	if hb.Deployment == "" {
		hb.Deployment = hb.Tier
	}
	hb.Capacity = min(hb.Capacity, MaxCapacity)
	hb.InFlight = min(max(hb.InFlight, 0), 2*hb.Capacity)
	hb.IntervalMs = min(max(hb.IntervalMs, MinBeatInterval.Milliseconds()), MaxBeatInterval.Milliseconds())
	hb.Weight = finite(hb.Weight, 1e9)
	hb.Order = min(max(hb.Order, 0), 1_000_000)
	hb.LatencyMs = finite(hb.LatencyMs, 86_400_000)
	hb.MsPerToken = finite(hb.MsPerToken, 86_400_000)
	hb.Samples = max(hb.Samples, 0)
	if hb.CoolingUntilMs < 0 {
		hb.CoolingUntilMs = 0
	}
	if limit := now.Add(MaxCooling).UnixMilli(); hb.CoolingUntilMs > limit {
		hb.CoolingUntilMs = limit
	}
	for _, v := range []*int64{&hb.RPM, &hb.TPM, &hb.RPMUsed, &hb.TPMUsed} {
		*v = min(max(*v, 0), MaxRate)
	}
	hb.RateWindowMs = min(max(hb.RateWindowMs, 0), MaxRateWindow.Milliseconds())
	if hb.RateFreesMs < 0 {
		hb.RateFreesMs = 0
	}
	if limit := now.Add(MaxRateWindow).UnixMilli(); hb.RateFreesMs > limit {
		hb.RateFreesMs = limit
	}
	hb.InputCostPerToken = finite(hb.InputCostPerToken, MaxCostPerToken)
	hb.OutputCostPerToken = finite(hb.OutputCostPerToken, MaxCostPerToken)
	hb.Tags = clampTags(hb.Tags)
	hb.MaxInputTokens = min(max(hb.MaxInputTokens, 0), MaxInputTokens)
	if hb.Mode != schema.ModeEmbedding {
		hb.Mode = "" // a mode this version does not know: chat
	}
	hb.Loaded = clampNames(hb.Loaded, MaxBeatLoaded, MaxLoadedNameLen)
	hb.LoadMs = finite(hb.LoadMs, MaxLoadMs)
	for d, us := range hb.QueueAgeUs {
		if limit := MaxQueueAge.Microseconds(); us < 0 || us > limit {
			hb.QueueAgeUs[d] = min(max(us, 0), limit)
		}
	}
	hb.HostSlots = min(max(hb.HostSlots, 0), MaxCapacity)
	hb.HostInFlight = min(max(hb.HostInFlight, 0), 2*hb.HostSlots)
}

// clampTags keeps the first MaxBeatTags non-empty, distinct tags of at
// most MaxTagLen bytes, reusing tags' array when nothing is dropped.
func clampTags(tags []string) []string { return clampNames(tags, MaxBeatTags, MaxTagLen) }

// clampNames keeps the first most non-empty, distinct names of at most
// maxLen bytes, reusing names' array when nothing is dropped.
func clampNames(names []string, most, maxLen int) []string {
	ok := len(names) <= most
	for i := 0; ok && i < len(names); i++ {
		if t := names[i]; t == "" || len(t) > maxLen || slices.Contains(names[:i], t) {
			ok = false
		}
	}
	if ok {
		return names
	}
	var out []string
	for _, t := range names {
		if t != "" && len(t) <= maxLen && !slices.Contains(out, t) {
			if out = append(out, t); len(out) == most {
				break
			}
		}
	}
	return out
}

// finite returns v within 0…limit, and 0 for NaN.
func finite(v, limit float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return min(v, limit)
}
