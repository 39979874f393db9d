package worker

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// senderTTL is how long the worker remembers a dispatcher that holds no job
// of it and has sent none since. A dispatcher needs the worker's count of
// its jobs only until a beat has shown them finished; minutes of beats
// have done that many times over.
const senderTTL = 10 * time.Minute

// sender is what a worker keeps of one dispatcher that sends it jobs: what
// its heartbeats' received, jobs and queue_age_us report. Guarded by the worker's mu.
//
// Every bound broker.DecodeHeartbeat checks holds whatever jobs arrive: at
// most MaxBeatDispatchers senders (receive), ids of at most MaxWorkerIDLen
// bytes (jobKey), and at most Concurrency+Backlog ≤ 2×MaxCapacity ≤
// MaxBeatJobs held seqs (New, accept). The largest beat that allows is
// about 180 KB (with every queue age the largest), within
// MaxHeartbeatBytes.
type sender struct {
	received uint64         // the highest Llmq-Job-Seq received
	held     map[uint64]int // seqs of the jobs held → how many hold it
	last     time.Time      // when a job last came
	// since is when the oldest job of the dispatcher's queue for this
	// tier arrived there, as its last job here tells: that job's arrival
	// less its Llmq-Queue-Wait-Us, or its arrival when none waited.
	since time.Time
}

// queued is a job the worker took, with the dispatcher key it was counted
// under.
type queued struct {
	m *nats.Msg
	// from is the job's Llmq-Dispatcher when it is one a dispatcher could
	// have sent (a bounce goes back to the dispatchers only then); seq its
	// Llmq-Job-Seq (see receive).
	from string
	seq  uint64
	// tracked says the job is in senders[from].held.
	tracked bool
}

// jobKey reads the dispatcher that sent m, the job's number and how long
// the oldest job left in the dispatcher's queue had waited
// (Llmq-Queue-Wait-Us) from it. Anyone may publish on a worker's subject,
// so the headers are untrusted: a dispatcher id longer than a heartbeat
// may carry (broker.MaxWorkerIDLen) is ignored, and so is a seq or a wait
// that is not a number; a wait is clamped to broker.MaxQueueAge.
func jobKey(m *nats.Msg) (d string, seq uint64, wait time.Duration) {
	if m.Header == nil {
		return "", 0, 0
	}
	d = m.Header.Get(schema.HeaderDispatcher)
	if len(d) > broker.MaxWorkerIDLen {
		return "", 0, 0
	}
	seq, err := strconv.ParseUint(m.Header.Get(schema.HeaderJobSeq), 10, 64)
	if err != nil {
		seq = 0
	}
	if v := m.Header.Get(schema.HeaderQueueWaitUs); v != "" {
		if us, err := strconv.ParseUint(v, 10, 64); err == nil {
			wait = time.Duration(min(us, uint64(broker.MaxQueueAge.Microseconds()))) * time.Microsecond
		}
	}
	return d, seq, wait
}

// receive records that a job seq of dispatcher d, sent when the oldest
// job left in d's queue had waited wait, arrived at now and, when hold,
// that the worker holds it. A job without a seq is numbered after the last one of its
// dispatcher. It returns the job's seq and whether the job is tracked in
// held. Called with w.mu held.
//
// The table is bounded as heartbeats are (broker.MaxBeatDispatchers): a
// new dispatcher when it is full takes the place of the one idle longest;
// when every one holds jobs, the job runs untracked (its dispatcher sees it
// as not yet received, which is safe: at worst it sends it again should
// the worker be lost).
func (w *Worker) receive(d string, seq uint64, wait time.Duration, hold bool, now time.Time) (uint64, bool) {
	if d == "" {
		return seq, false
	}
	s := w.senders[d]
	if s == nil {
		if len(w.senders) >= broker.MaxBeatDispatchers && !w.evictIdle() {
			return seq, false
		}
		s = &sender{}
		w.senders[d] = s
	}
	if seq == 0 {
		seq = s.received + 1
	}
	s.received = max(s.received, seq)
	s.last = now
	s.since = now.Add(-wait)
	if !hold {
		return seq, false
	}
	if s.held == nil {
		s.held = map[uint64]int{}
	}
	s.held[seq]++
	return seq, true
}

// evictIdle forgets the dispatcher that sent its last job longest ago among
// those holding none, and reports whether there was one. Called with w.mu
// held.
func (w *Worker) evictIdle() bool {
	var oldest string
	var at time.Time
	for d, s := range w.senders {
		if len(s.held) == 0 && (oldest == "" || s.last.Before(at)) {
			oldest, at = d, s.last
		}
	}
	if oldest == "" {
		return false
	}
	delete(w.senders, oldest)
	return true
}

// unhold forgets a finished tracked job. Called with w.mu held.
func (w *Worker) unhold(q queued) {
	if !q.tracked {
		return
	}
	s := w.senders[q.from]
	if s == nil {
		return
	}
	if n := s.held[q.seq]; n > 1 {
		s.held[q.seq] = n - 1
	} else {
		delete(s.held, q.seq)
	}
}

// senderState returns the received, jobs and queue_age_us maps of a
// heartbeat, first forgetting dispatchers idle for senderTTL. A
// dispatcher's queue age is reported while it holds jobs here or sent one
// within recent (the beat interval): one that has long sent nothing here
// has its queue served elsewhere. Called with w.mu held.
func (w *Worker) senderState(now time.Time, recent time.Duration) (map[string]uint64, map[string][]uint64, map[string]int64) {
	var received map[string]uint64
	var jobs map[string][]uint64
	var ages map[string]int64
	for d, s := range w.senders {
		if len(s.held) == 0 && now.Sub(s.last) > senderTTL {
			delete(w.senders, d)
			continue
		}
		if received == nil {
			received = make(map[string]uint64, len(w.senders))
		}
		received[d] = s.received
		if len(s.held) > 0 || now.Sub(s.last) <= recent {
			if ages == nil {
				ages = map[string]int64{}
			}
			ages[d] = min(max(now.Sub(s.since), 0), broker.MaxQueueAge).Microseconds()
		}
		if len(s.held) == 0 {
			continue
		}
		if jobs == nil {
			jobs = map[string][]uint64{}
		}
		seqs := make([]uint64, 0, len(s.held))
		for seq := range s.held {
			seqs = append(seqs, seq)
		}
		jobs[d] = seqs
	}
	return received, jobs, ages
}
