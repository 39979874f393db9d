package dispatcher

import (
	"time"

	"github.com/nats-io/nats.go"
)

// pending is a job waiting for a free worker, with what the dispatcher
// knows of its history.
type pending struct {
	msg      *nats.Msg
	arrived  time.Time
	deadline time.Time
	// attempts made so far, in all tiers and in the current one.
	attempts, tierAttempts int
	// fallbacks taken so far; origin is the tier the producer asked for
	// ("" while the job is in it).
	fallbacks int
	origin    string
	// exclude lists deployments that failed the job in this tier.
	exclude []string
	// batch jobs use only the capacity interactive jobs leave.
	batch bool
	// sel narrows the workers the job may go to (tags, prompt size); nil
	// when nothing does.
	sel *selection
	// key names the job's conversation for affinity (0: none).
	key uint64
	// sent is when the job was forwarded (set on the copy a worker's
	// tracked jobs keep).
	sent time.Time
}

func (p *pending) excluded(deployment string) bool {
	for _, d := range p.exclude {
		if d == deployment {
			return true
		}
	}
	return false
}

// queue is a FIFO ring of pending jobs with a fixed bound.
type queue struct {
	buf        []pending
	head, size int
}

func (q *queue) len() int { return q.size }

func (q *queue) grow(max int) bool {
	if q.size < len(q.buf) {
		return true
	}
	if q.size >= max {
		return false
	}
	grown := make([]pending, min(max, 2*len(q.buf)+16))
	for i := range q.size {
		grown[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = grown, 0
	return true
}

// push appends p; the ring grows up to max.
func (q *queue) push(p pending, max int) bool {
	if !q.grow(max) {
		return false
	}
	q.buf[(q.head+q.size)%len(q.buf)] = p
	q.size++
	return true
}

// pushFront puts p first: retries and re-dispatches of lost jobs go
// before new work. It may exceed max by the jobs already accepted.
func (q *queue) pushFront(p pending) {
	if q.size == len(q.buf) {
		q.grow(q.size + 1)
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = p
	q.size++
}

func (q *queue) peek() *pending { return &q.buf[q.head] }

func (q *queue) pop() pending {
	p := q.buf[q.head]
	q.buf[q.head] = pending{}
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return p
}

// removeExpired takes out, in order, the jobs whose deadline is before
// now, appending them to out.
func (q *queue) removeExpired(now time.Time, out []pending) []pending {
	kept := 0
	n := q.size
	for i := range n {
		p := q.buf[(q.head+i)%len(q.buf)]
		if p.deadline.Before(now) {
			out = append(out, p)
			continue
		}
		q.buf[(q.head+kept)%len(q.buf)] = p
		kept++
	}
	for i := kept; i < n; i++ {
		q.buf[(q.head+i)%len(q.buf)] = pending{}
	}
	q.size = kept
	return out
}

// drain takes out every job.
func (q *queue) drain(out []pending) []pending {
	for q.size > 0 {
		out = append(out, q.pop())
	}
	return out
}

// at is the i-th job from the head (i < len).
func (q *queue) at(i int) *pending { return &q.buf[(q.head+i)%len(q.buf)] }

// removeAt takes out the i-th job from the head, keeping the others in
// order; it moves the i jobs before it.
func (q *queue) removeAt(i int) pending {
	if i == 0 {
		return q.pop()
	}
	n := len(q.buf)
	p := q.buf[(q.head+i)%n]
	for j := i; j > 0; j-- {
		q.buf[(q.head+j)%n] = q.buf[(q.head+j-1)%n]
	}
	q.buf[q.head] = pending{}
	q.head = (q.head + 1) % n
	q.size--
	return p
}
