package worker

import (
	"context"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// DefaultResidencyInterval is how often a worker asks its host which
// models it has loaded.
const DefaultResidencyInterval = 2 * time.Second

// residencyTimeout bounds one question to the host.
const residencyTimeout = 2 * time.Second

// staleCheck is how often the loop looks for a call that found its model
// cold (provider.Residency.Stale), to ask the host again at once.
const staleCheck = 100 * time.Millisecond

// residencyLoop asks the host which models it has loaded every
// ResidencyInterval, and soon after a call found its model cold (the load
// may have evicted another model). A change of residency makes the worker
// beat at once.
func (w *Worker) residencyLoop(r provider.Resident) {
	defer w.beatWG.Done()
	t := time.NewTicker(staleCheck)
	defer t.Stop()
	last := time.Now() // Start has asked once (firstResidency)
	prev := r.Residency()
	for {
		if now := time.Now(); now.Sub(last) >= w.cfg.ResidencyInterval || r.Residency().Stale {
			ctx, cancel := context.WithTimeout(w.ctx, residencyTimeout)
			if err := r.Refresh(ctx); err != nil {
				w.log.Debug("asking the host which models it has loaded", "err", err)
			}
			cancel()
			last = now
		}
		if cur := r.Residency(); cur.Warm != prev.Warm || cur.Known != prev.Known {
			w.kick()
			prev = cur
		}
		select {
		case <-w.stopCh:
			return
		case <-t.C:
		}
	}
}

// residency fills a beat's residency fields from the provider, when it can
// tell.
func (w *Worker) residency(hb *schema.Heartbeat) {
	r, ok := w.cfg.Provider.(provider.Resident)
	if !ok {
		return
	}
	res := r.Residency()
	if !res.Known {
		return
	}
	hb.Cold = !res.Warm
	hb.Loaded = res.Loaded
	hb.LoadMs = float64(res.LoadTime) / float64(time.Millisecond)
}

// warmUp loads the model on the host before the first beat when WarmUp
// is set (a provider that cannot, or a failure, is logged and the worker
// starts cold). ctx is Start's.
func (w *Worker) warmUp(ctx context.Context) {
	if !w.cfg.WarmUp {
		return
	}
	wm, ok := w.cfg.Provider.(provider.Warmer)
	if !ok {
		return
	}
	if h := w.cfg.HostBudget; h != nil {
		// A load is a call on the host: it takes a slot of the budget
		// the host's other workers may already be using.
		if err := h.acquire(ctx.Done()); err != nil {
			w.log.Warn("warm-up skipped; starting cold", "err", err)
			return
		}
		defer h.release()
	}
	start := time.Now()
	if err := wm.Warm(ctx); err != nil {
		w.log.Warn("warm-up failed; starting cold", "err", err)
		return
	}
	w.log.Info("model loaded before the first beat", "model", w.cfg.Model, "took", time.Since(start).Round(time.Millisecond))
}

// firstResidency asks the host which models it has loaded before the
// worker first beats, so its first beat says whether it is warm (bounded
// by residencyTimeout; a host that does not answer leaves it unknown).
func (w *Worker) firstResidency(ctx context.Context) {
	r, ok := w.cfg.Provider.(provider.Resident)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, residencyTimeout)
	defer cancel()
	if err := r.Refresh(ctx); err != nil {
		w.log.Debug("asking the host which models it has loaded", "err", err)
	}
}
