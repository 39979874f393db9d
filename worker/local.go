package worker

import "github.com/nats-io/nats.go"

// Take handles a job forwarded in this process as if it had come on the
// worker's subject, on the caller's goroutine, without blocking (a job
// over the worker's concurrency and backlog is answered overloaded, as on
// NATS). A dispatcher beside the worker (llmq up) hands its jobs over this
// way and saves one NATS crossing per job; the reply still goes over NATS.
//
// m must be laid out as on NATS (Subject the worker's, Reply the
// producer's inbox) and is the worker's from then on; it is checked as any
// job is. Take returns false, and does nothing, when the worker does not
// take jobs (not started, or stopped) or the subject is not its own: the
// caller then publishes m on NATS.
func (w *Worker) Take(m *nats.Msg) bool {
	if !w.taking.Load() || m.Subject != w.subject {
		return false
	}
	w.accept(m)
	return true
}

// Conn returns the worker's NATS connection (Config.Conn).
func (w *Worker) Conn() *nats.Conn { return w.nc }
