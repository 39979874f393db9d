package dispatcher

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// Tiers a dispatcher serves are those configured and those its workers
// announce in beats. A beat may come from anyone: learned tiers are
// bounded (Config.MaxLearnedTiers) and forgotten when they have had no
// worker and no job for Config.LearnedTierExpiry, so beats naming ever new
// tiers cannot grow the dispatcher's state, its unknown_tier replies or
// the label sets of its Observer without bound.

// maxListedTiers is how many known tiers an unknown_tier reply names.
const maxListedTiers = 8

// learnTier adds tier name, first named by a beat, or returns nil when
// Config.MaxLearnedTiers are known. Called with d.mu held; name is a valid
// tier (DecodeHeartbeat checked it).
func (d *Dispatcher) learnTier(name string) *tier {
	if d.learned >= d.cfg.MaxLearnedTiers {
		return nil
	}
	t := &tier{name: name}
	d.tiers[name] = t
	d.learned++
	d.names.dirty = true
	return t
}

// forget reports whether learned tier t is to be forgotten at now: it has
// had no worker and no job, queued or held, for Config.LearnedTierExpiry.
// Called with d.mu held.
func (d *Dispatcher) forget(t *tier, now time.Time) bool {
	if t.configured || len(t.workers) > 0 || t.queue.len() > 0 || t.batch.len() > 0 || t.held > 0 || t.heldBatch > 0 {
		t.idleSince = time.Time{}
		return false
	}
	if t.idleSince.IsZero() {
		t.idleSince = now
		return false
	}
	return now.Sub(t.idleSince) > d.cfg.LearnedTierExpiry
}

// removeWorker drops worker i of t. Called with d.mu held.
func (d *Dispatcher) removeWorker(t *tier, i int) {
	delete(d.byID, t.workers[i].hb.Worker)
	t.remove(i)
	d.nworkers--
	d.notify()
}

// unknownTier is the answer to a job for a tier the dispatcher does not
// serve. It names a few known tiers, never all: the reply must stay far
// below the max payload however many tiers there are. Called with d.mu
// held.
func (d *Dispatcher) unknownTier(name string) *schema.Error {
	if !broker.ValidTier(name) && !broker.ValidModel(name) {
		return schema.Errorf(schema.CodeUnknownTier, "model %.64q is not a valid model name", name)
	}
	// Configured tiers first: those are the ones a producer meant.
	known := d.tierNames()
	slices.SortStableFunc(known, func(a, b string) int {
		return cmp.Compare(boolInt(!d.tiers[a].configured), boolInt(!d.tiers[b].configured))
	})
	list := strings.Join(known[:min(len(known), maxListedTiers)], ", ")
	if more := len(known) - maxListedTiers; more > 0 {
		list += " and " + strconv.Itoa(more) + " more"
	}
	return schema.Errorf(schema.CodeUnknownTier, "unknown tier %q: no model_name, alias or wildcard model_name matches it (known: %s)", name, list)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
