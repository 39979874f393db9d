package worker

import (
	"errors"
	"fmt"
	"sync"

	"github.com/llmq/llmq/broker"
)

// HostBudget is one GPU host's slot budget, shared by the workers that
// serve the host's deployments in one process (`llmq worker --api-base`):
// each worker runs at most its own Concurrency (the model's
// OLLAMA_NUM_PARALLEL), and all of them together at most the budget's
// slots, so two tiers on one GPU never oversubscribe it. Workers report
// the budget in their beats, and count as in flight the slots the others
// hold, so dispatchers see the room the host has. Safe for concurrent
// use.
type HostBudget struct {
	slots chan struct{}

	mu    sync.Mutex
	kicks []func() // wake each worker's beat loop when a slot frees
}

// NewHostBudget returns a budget of n slots (1…broker.MaxCapacity).
func NewHostBudget(n int) (*HostBudget, error) {
	if n <= 0 || n > broker.MaxCapacity {
		return nil, fmt.Errorf("worker: host slots %d must be within 1…%d", n, broker.MaxCapacity)
	}
	return &HostBudget{slots: make(chan struct{}, n)}, nil
}

// Slots returns the budget's size.
func (h *HostBudget) Slots() int { return cap(h.slots) }

// InFlight returns the slots held now.
func (h *HostBudget) InFlight() int { return len(h.slots) }

// join registers a worker's beat kick.
func (h *HostBudget) join(kick func()) {
	h.mu.Lock()
	h.kicks = append(h.kicks, kick)
	h.mu.Unlock()
}

// errHostStopped ends a wait for a host slot when the worker is cancelled.
var errHostStopped = errors.New("worker: stopped while waiting for a host slot")

// acquire takes a slot, waiting for one; it fails when done closes first.
func (h *HostBudget) acquire(done <-chan struct{}) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-done:
		return errHostStopped
	}
}

// release frees a slot and tells every worker of the host, so each beats
// the room it has again.
func (h *HostBudget) release() {
	<-h.slots
	h.mu.Lock()
	kicks := h.kicks
	h.mu.Unlock()
	for _, k := range kicks {
		k()
	}
}

// serve runs one job within the host's budget: it waits for a host slot
// (a job cancelled meanwhile runs at once, to be answered with its error)
// and frees it when the job ends.
func (w *Worker) serve(q queued) {
	h := w.cfg.HostBudget
	if h == nil {
		w.handle(q)
		return
	}
	if err := h.acquire(w.ctx.Done()); err != nil {
		w.handle(q)
		return
	}
	defer h.release()
	w.handle(q)
}

// hostView returns what a beat says of the host's budget: its slots, the
// jobs running on the host, and the worker's in-flight count raised so
// that its free slots are no more than the host's.
func (w *Worker) hostView(inFlight int) (slots, hostInFlight, reported int) {
	h := w.cfg.HostBudget
	if h == nil {
		return 0, 0, inFlight
	}
	slots, hostInFlight = h.Slots(), h.InFlight()
	free := min(w.cfg.Concurrency-inFlight, slots-hostInFlight)
	return slots, hostInFlight, max(inFlight, w.cfg.Concurrency-max(free, 0))
}
