package dispatcher

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// seqWindow is how far below the last accepted sequence number a beat may
// be and still be taken for an old beat overtaken by newer ones (ignored).
// A beat further below starts a new sequence: otherwise one forged beat
// with a huge number would make the dispatcher ignore the worker's real
// beats for ever (seen in issue 10: sequence 2^62 pinned a fleet). A
// forged beat can thus hide a worker's real beats for at most seqWindow
// of them.
const seqWindow = 8

// stale reports whether a beat numbered seq, after one numbered last, is
// an old beat to ignore.
func stale(last, seq uint64) bool { return seq <= last && last-seq <= seqWindow }

// onHeartbeat updates the fleet and dispatches what the beat made room for.
//
// Beats are untrusted: broker.Subjects.DecodeHeartbeat refuses one that is
// malformed, or whose worker id, beat subject and job subject disagree, so
// a beat can only ever route jobs to <prefix>.w.<its own id>; it clamps
// capacity, interval, cooling and the rest. Beats may name new tiers and
// workers only up to Config.MaxLearnedTiers and Config.MaxWorkers, and a
// worker id already known in one tier is refused in another.
//
// What remains for the permission model (docs: only workers may publish on
// <prefix>.hb.*, and nobody but dispatchers and operators may subscribe
// to it, so worker ids cannot be learned): whoever can publish a beat for
// a worker id can still claim that worker's slots, mark it draining, or
// send a "stopped" beat that makes this dispatcher forget it and dispatch
// again the jobs it held (which then run twice). A dispatcher cannot tell
// such a beat from the worker's own.
func (d *Dispatcher) onHeartbeat(m *nats.Msg) {
	now := time.Now()
	hb, err := d.cfg.Subjects.DecodeHeartbeat(m.Subject, m.Data, now)
	if err != nil {
		n := d.drops.badHeartbeats.Add(1)
		if d.drops.hbLog.allow(now) {
			d.log.Warn("heartbeat refused", "subject", clip(m.Subject), "err", err, "refused", n)
		}
		return
	}
	var out []dispatch
	var fails []failed
	d.mu.Lock()
	t, known := d.byID[hb.Worker]
	if known && t.name != hb.Tier {
		d.mu.Unlock()
		n := d.drops.badHeartbeats.Add(1)
		if d.drops.hbLog.allow(now) {
			d.log.Warn("heartbeat refused: worker already serves another tier", "worker", hb.Worker, "tier", t.name, "beat_tier", hb.Tier, "refused", n)
		}
		return
	}
	if !known {
		t = d.tiers[hb.Tier]
	}
	i, w := -1, (*worker)(nil)
	if known {
		i, w = t.find(hb.Worker)
	}
	if w != nil && stale(w.hb.Seq, hb.Seq) {
		d.mu.Unlock() // an old beat overtaken by a newer one
		return
	}
	if hb.State == schema.StateStopped {
		if w != nil {
			d.observeBeat(&hb)
			d.removeWorker(t, i)
			d.log.Info("worker left", "worker", hb.Worker, "tier", hb.Tier)
			w.hb, w.seen = hb, hb.Received[d.cfg.ID]
			w.reconcile(d.cfg.ID, now)
			fails = d.requeueLost(t, w, now, fails) // a worker that left holding jobs
			out, fails = d.drain(t, now, out, fails)
		}
		d.mu.Unlock()
		d.send(out, fails)
		return
	}
	if w == nil {
		if w, t = d.join(t, &hb, now); w == nil {
			d.mu.Unlock()
			return
		}
	}
	d.observeBeat(&hb)
	if w.hb.State != hb.State && w.hb.State != "" {
		d.notify()
	}
	redeployed := w.hb.Deployment != hb.Deployment
	w.hb = hb
	if redeployed {
		t.reshare()
	}
	w.seen = hb.Received[d.cfg.ID]
	w.lastSeen = now
	if hb.Samples > 0 && hb.LatencyMs > 0 {
		w.lastLatencyMs = hb.LatencyMs
	}
	w.noteBusy(now)
	w.reconcile(d.cfg.ID, now)
	fails = d.lostInTransit(t, w, now, fails)
	out, fails = d.drain(t, now, out, fails)
	d.mu.Unlock()
	d.send(out, fails)
}

// join adds the worker of hb to tier t (nil: a tier to learn), within
// Config.MaxWorkers and Config.MaxLearnedTiers; it returns the worker and
// its tier, or nil when a limit refused it. Called with d.mu held.
func (d *Dispatcher) join(t *tier, hb *schema.Heartbeat, now time.Time) (*worker, *tier) {
	if d.nworkers >= d.cfg.MaxWorkers {
		n := d.drops.workerLimit.Add(1)
		if d.drops.limitLog.allow(now) {
			d.log.Warn("heartbeat of a new worker refused: worker limit reached", "worker", hb.Worker, "tier", hb.Tier, "max_workers", d.cfg.MaxWorkers, "refused", n)
		}
		return nil, nil
	}
	if t == nil {
		if t = d.learnTier(hb.Tier); t == nil {
			n := d.drops.tierLimit.Add(1)
			if d.drops.limitLog.allow(now) {
				d.log.Warn("heartbeat naming a new tier refused: learned tier limit reached", "worker", hb.Worker, "tier", clip(hb.Tier), "max_learned_tiers", d.cfg.MaxLearnedTiers, "refused", n)
			}
			return nil, nil
		}
	}
	w := &worker{subject: hb.Subject}
	t.workers = append(t.workers, w)
	d.nworkers++
	d.byID[hb.Worker] = t
	d.notify()
	d.log.Info("worker joined", "worker", hb.Worker, "tier", hb.Tier, "deployment", hb.Deployment, "capacity", hb.Capacity)
	return w, t
}
