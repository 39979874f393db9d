package dispatcher

import (
	"container/heap"
	"time"
)

// delayedJob is a retry waiting out its back-off.
type delayedJob struct {
	due  time.Time
	tier string
	job  pending
}

// delayHeap orders retries by due time.
type delayHeap []delayedJob

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(delayedJob)) }
func (h *delayHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = delayedJob{}
	*h = old[:n-1]
	return x
}

func (h *delayHeap) add(d delayedJob) { heap.Push(h, d) }

// due pops the retries due by now.
func (h *delayHeap) popDue(now time.Time, out []delayedJob) []delayedJob {
	for h.Len() > 0 && !(*h)[0].due.After(now) {
		out = append(out, heap.Pop(h).(delayedJob))
	}
	return out
}
