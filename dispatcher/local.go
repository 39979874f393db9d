package dispatcher

import (
	"fmt"
	"maps"

	"github.com/nats-io/nats.go"
)

// Take handles a job published in this process as if it had come on the
// dispatcher's job subscription, on the caller's goroutine. A producer
// beside the dispatcher (the gateway of llmq up --gateway) hands its jobs
// over this way and saves one NATS crossing per job: the job still goes
// to its worker, and the reply to m.Reply, over NATS.
//
// m must be laid out as on NATS (Subject one of this dispatcher's job
// subjects, Reply the producer's inbox) and is the dispatcher's from then
// on: it may change m.Header, and it keeps m.Data until the job is
// forwarded. m is checked as any job is (the reply subject, headers only
// llmq components may set, the deadline, the model). Take returns false,
// and does nothing, when the dispatcher is not running or the subject is
// not one of its job subjects: the caller then publishes m on NATS.
func (d *Dispatcher) Take(m *nats.Msg) bool {
	if !d.taking.Load() {
		return false
	}
	if _, ok := d.cfg.Subjects.Tier(m.Subject); !ok {
		return false
	}
	d.onJob(m)
	return true
}

// Conn returns the dispatcher's NATS connection (Config.Conn).
func (d *Dispatcher) Conn() *nats.Conn { return d.nc }

// LocalWorker is a worker running in the dispatcher's process;
// *worker.Worker implements it.
type LocalWorker interface {
	// Subject is the subject the worker takes jobs on.
	Subject() string
	// Take handles a job message as if it had come on Subject, without
	// blocking, or returns false, doing nothing, when it takes no jobs.
	Take(m *nats.Msg) bool
	// Conn is the worker's NATS connection.
	Conn() *nats.Conn
}

// AddLocal tells the dispatcher of workers in its own process (llmq up
// runs its workers so): a job it sends one of them is handed over in
// process (LocalWorker.Take) instead of published on the worker's subject,
// one NATS crossing less per job. Routing does not change: the strategy
// picks among all workers from their beats, local or not, and a local
// worker that takes no jobs (stopping) gets them over NATS as any other.
//
// Each worker must use the dispatcher's connection: its reply then follows
// on the wire whatever the dispatcher's connection carried before, such as
// a gateway's subscription to the job's inbox (gateway.Config.Dispatcher).
func (d *Dispatcher) AddLocal(ws ...LocalWorker) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := map[string]LocalWorker{}
	if cur := d.local.Load(); cur != nil {
		maps.Copy(next, *cur)
	}
	for _, w := range ws {
		if w.Conn() != d.nc {
			return fmt.Errorf("dispatcher: local worker on %s does not use the dispatcher's connection", w.Subject())
		}
		next[w.Subject()] = w
	}
	d.local.Store(&next)
	return nil
}

// localWorker returns the local worker on subject, or nil.
func (d *Dispatcher) localWorker(subject string) LocalWorker {
	if local := d.local.Load(); local != nil {
		return (*local)[subject]
	}
	return nil
}
