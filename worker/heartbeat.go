package worker

import (
	"time"

	"github.com/llmq/llmq/schema"
)

// reconnectPoll is how often the beat loop looks for a reconnect.
const reconnectPoll = 50 * time.Millisecond

// beatLoop beats every HeartbeatInterval, and early (at most every
// StateInterval) when a slot frees, a dispatcher announces itself, or a job
// is accepted from one of several dispatchers (see accept).
func (w *Worker) beatLoop() {
	defer w.beatWG.Done()
	// wake beats when room frees in a usage window that is full or has
	// refused a job, so dispatchers holding jobs for it learn at once.
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	w.rearm(wake)
	w.beat()
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	// A reconnect is noticed by its count (the connection's handlers are
	// broker.Connect's): the worker beats at once, so that dispatchers
	// that heard nothing while it was cut off do not take it for lost.
	rc := time.NewTicker(reconnectPoll)
	defer rc.Stop()
	reconnects := w.nc.Stats().Reconnects
	last := time.Now()
	for {
		select {
		case <-w.stopCh:
			return
		case <-rc.C:
			r := w.nc.Stats().Reconnects
			if r == reconnects {
				continue
			}
			reconnects = r
		case <-t.C:
		case <-wake.C:
		case <-w.beatNow:
			if gap := w.cfg.StateInterval - time.Since(last); gap > 0 {
				select {
				case <-time.After(gap):
				case <-w.stopCh:
					return
				}
			}
		}
		w.beat()
		last = time.Now()
		w.rearm(wake)
	}
}

// rearm sets the wake timer to when room frees in the usage window, if a
// beat is due then (see rateWindow.usage), else stops it.
func (w *Worker) rearm(wake *time.Timer) {
	_, _, _, _, at := w.rate.usage(time.Now())
	if at.IsZero() {
		wake.Stop()
		return
	}
	wake.Reset(max(time.Until(at), 0) + time.Millisecond)
}

// Heartbeat returns the worker's current state.
func (w *Worker) Heartbeat() schema.Heartbeat {
	state := schema.StateReady
	if w.draining.Load() {
		state = schema.StateDraining
	}
	lat, per, n := w.window.medians()
	now := time.Now()
	w.mu.Lock()
	received, jobs, ages := w.senderState(now, w.cfg.HeartbeatInterval)
	coolUntil, coolReason := w.cool.state(now)
	// Under w.mu, as accept takes a job: every job the beat says received
	// is counted once, waiting or in the window (or gone: refused, ended).
	calls, tokens, waiting, frees, _ := w.rate.usage(now)
	w.mu.Unlock()
	hostSlots, hostInFlight, inFlight := w.hostView(int(w.inflight.Load()))
	hb := schema.Heartbeat{
		Worker:     w.cfg.ID,
		Tier:       w.cfg.Tier,
		Deployment: w.cfg.Deployment,
		Provider:   w.cfg.ProviderName,
		Model:      w.cfg.Model,
		Host:       w.cfg.Host,
		Subject:    w.subject,
		State:      state,
		Seq:        w.seq.Add(1),
		IntervalMs: w.cfg.HeartbeatInterval.Milliseconds(),
		Capacity:   w.cfg.Concurrency,
		InFlight:   inFlight,
		Weight:     w.cfg.Weight,
		Order:      w.cfg.Order,
		LatencyMs:  lat,
		MsPerToken: per,
		Samples:    n,
		Completed:  w.done.Load(),
		Failed:     w.failed.Load(),
		Received:   received,
		Jobs:       jobs,
		QueueAgeUs: ages,

		CoolingUntilMs: coolUntil,
		CoolingReason:  coolReason,

		RPM:                w.cfg.RPM,
		TPM:                w.cfg.TPM,
		RPMUsed:            calls + waiting,
		TPMUsed:            tokens + waiting*meanTokens(calls, tokens),
		RateFreesMs:        unixMs(frees),
		RateWindowMs:       rateWindowMs(w.cfg.RateWindow),
		InputCostPerToken:  w.cfg.InputCostPerToken,
		OutputCostPerToken: w.cfg.OutputCostPerToken,
		Tags:               w.cfg.Tags,
		MaxInputTokens:     w.cfg.MaxInputTokens,
		Mode:               w.mode(),
		HostSlots:          hostSlots,
		HostInFlight:       hostInFlight,
	}
	w.residency(&hb)
	return hb
}

// mode is the beat's Mode: schema.ModeEmbedding for an embedding worker.
func (w *Worker) mode() string {
	if w.cfg.Embedding {
		return schema.ModeEmbedding
	}
	return ""
}

// meanTokens is the mean tokens of the window's calls (what a job not yet
// started counts for in a beat), at least 1.
func meanTokens(calls, tokens int64) int64 {
	if calls <= 0 {
		return 1
	}
	return max(tokens/calls, 1)
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// rateWindowMs is a beat's rate_window_ms: omitted for the default minute.
func rateWindowMs(d time.Duration) int64 {
	if d == DefaultRateWindow {
		return 0
	}
	return d.Milliseconds()
}

// beat publishes the current state. Beats come from the beat loop and from
// Stop: beatMu makes each one's state, seq and publication one step, so
// they go out in seq order and no "ready" follows "draining".
func (w *Worker) beat() {
	w.beatMu.Lock()
	defer w.beatMu.Unlock()
	w.publishBeat(w.Heartbeat())
}

// final publishes the "stopped" beat, so dispatchers forget the worker at
// once.
func (w *Worker) final() {
	w.beatMu.Lock()
	defer w.beatMu.Unlock()
	hb := w.Heartbeat()
	hb.State = schema.StateStopped
	w.publishBeat(hb)
}

func (w *Worker) publishBeat(hb schema.Heartbeat) {
	data, err := schema.MsgPack.Marshal(&hb) // one buffer of the size it takes
	if err != nil {
		w.log.Error("encode heartbeat", "err", err)
		return
	}
	if err := w.nc.Publish(w.cfg.Subjects.Heartbeat(w.cfg.ID), data); err != nil {
		w.log.Debug("publish heartbeat", "err", err)
	}
}
