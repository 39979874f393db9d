package worker

import "testing"

func TestRunnerPool_JobGoesToRunnerIdleLast_NewRunnersOnlyUpToLimit(t *testing.T) {
	t.Parallel()
	p := runnerPool{limit: 3}
	job := func(i uint64) queued { return queued{seq: i} }
	var rs []*runner
	for i := range uint64(3) {
		r, start := p.give(job(i))
		if !start || r == nil {
			t.Fatalf("job %d with %d runners started, none idle: want a new runner", i, i)
		}
		rs = append(rs, r)
	}
	if r, start := p.give(job(3)); r != nil || start {
		t.Fatalf("job 3 with all 3 runners busy: got runner %v start %v, want it to wait", r, start)
	}
	if q, ok := p.next(rs[0]); !ok || q.seq != 3 {
		t.Fatalf("runner 0 done: got job %d (%v), want the waiting job 3", q.seq, ok)
	}
	for _, r := range rs[1:] {
		if _, ok := p.next(r); ok {
			t.Fatal("a runner done with no job waiting got one")
		}
	}
	// Runners 1 then 2 went idle: 2 is hottest.
	for i, want := range []*runner{rs[2], rs[1]} {
		r, start := p.give(job(uint64(4 + i)))
		if r != want || start {
			t.Fatalf("job %d: got runner %p (start %v), want the runner idle last %p", 4+i, r, start, want)
		}
		if q := <-r.job; q.seq != uint64(4+i) {
			t.Fatalf("runner got job %d, want %d", q.seq, 4+i)
		}
	}
	if p.started != 3 {
		t.Fatalf("started %d runners, want 3", p.started)
	}
}

func TestRing_KeepsOrderAcrossGrowthAndWrap(t *testing.T) {
	t.Parallel()
	var q ring
	next, want := uint64(0), uint64(0)
	for round := range 5 {
		for range 7 + round*11 {
			q.push(queued{seq: next})
			next++
		}
		for range 5 + round*7 {
			j, ok := q.pop()
			if !ok || j.seq != want {
				t.Fatalf("pop: got %d (%v), want %d", j.seq, ok, want)
			}
			want++
		}
	}
	for want < next {
		j, ok := q.pop()
		if !ok || j.seq != want {
			t.Fatalf("pop: got %d (%v), want %d", j.seq, ok, want)
		}
		want++
	}
	if _, ok := q.pop(); ok {
		t.Fatal("pop on an empty ring returned a job")
	}
}
