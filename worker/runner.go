package worker

// Runners run the worker's jobs, one job at a time each, at most
// Concurrency of them. They start on demand, when a job finds no idle
// runner, and a job goes to the runner that went idle last (a LIFO), not to
// whichever parked goroutine a shared channel wakes. So the few runners a
// load needs do all of its work: their stacks stay grown, and the runners
// it does not need stay parked. With a channel every runner took its turn,
// and the garbage collector had shrunk each one's stack while it waited,
// so a job grew it again (runtime.copystack was 12.6% of a job's CPU with
// 1,024 runners, 5.8% with 64; bench/NOTES.md). Runners do not exit before
// Stop: a parked runner costs its shrunk stack.

// runner is one runner goroutine's hand-off: while the runner is idle, a
// job is put here, and only then (so it never blocks).
type runner struct {
	job chan queued
}

// runnerPool is the runners' state: the idle runners and the jobs waiting
// for one. There is never both an idle runner and a waiting job. Guarded
// by Worker.mu.
type runnerPool struct {
	limit   int       // Concurrency
	started int       // runners started, at most limit
	idle    []*runner // the last one went idle last
	waiting ring      // jobs all runners were busy for
}

// give places q: with the runner that went idle last, which it returns
// (q is in its hand-off); or, when none is idle and fewer than limit are
// started, it returns a new runner that the caller starts with q; else q
// waits for a runner (nil).
func (p *runnerPool) give(q queued) (r *runner, start bool) {
	if n := len(p.idle); n > 0 {
		r = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		r.job <- q
		return r, false
	}
	if p.started < p.limit {
		p.started++
		return &runner{job: make(chan queued, 1)}, true
	}
	p.waiting.push(q)
	return nil, false
}

// next is what runner r does after a job: it takes the job that waited
// longest, or, when none waits, r is idle (false) and waits on its
// hand-off.
func (p *runnerPool) next(r *runner) (queued, bool) {
	if q, ok := p.waiting.pop(); ok {
		return q, true
	}
	p.idle = append(p.idle, r)
	return queued{}, false
}

// ring is a FIFO of jobs that grows as needed. The worker holds at most
// Concurrency+Backlog jobs, so it does too.
type ring struct {
	buf        []queued
	head, size int
}

func (q *ring) push(j queued) {
	if q.size == len(q.buf) {
		buf := make([]queued, max(2*len(q.buf), 16))
		n := copy(buf, q.buf[q.head:])
		copy(buf[n:], q.buf[:q.head])
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = j
	q.size++
}

func (q *ring) pop() (queued, bool) {
	if q.size == 0 {
		return queued{}, false
	}
	j := q.buf[q.head]
	q.buf[q.head] = queued{} // let the message go
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return j, true
}

// start runs a new runner with its first job. Called under w.mu while the
// worker takes jobs, so before Stop waits for the runners.
func (w *Worker) start(r *runner, q queued) {
	w.wg.Add(1)
	go w.run(r, q)
}

// run serves q, then each job the pool gives r, until Stop.
func (w *Worker) run(r *runner, q queued) {
	defer w.wg.Done()
	for {
		w.serve(q)
		var ok bool
		if q, ok = w.after(r, q); !ok {
			return
		}
	}
}

// after forgets the finished job done and frees its slot, and returns r's
// next job: one that waited, else one handed to r once it is idle. false
// once Stop has closed the door and r holds no job.
func (w *Worker) after(r *runner, done queued) (queued, bool) {
	w.mu.Lock()
	w.unhold(done)
	q, ok := w.pool.next(r)
	w.mu.Unlock()
	w.finish()
	if ok {
		return q, true
	}
	select {
	case q := <-r.job:
		return q, true
	case <-w.stopCh:
		// Stop closed the door (under w.mu) before stopCh: a job handed to
		// r before that is in r.job now.
		select {
		case q := <-r.job:
			return q, true
		default:
			return queued{}, false
		}
	}
}
