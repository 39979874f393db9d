package broker

import (
	"sync"

	"github.com/nats-io/nats.go"
)

// Inboxes lets the parts of one process answer each other without NATS:
// a producer registers the channel its reply subscription delivers to
// (the gateway of llmq up does, for each request), and a worker in the
// same process (worker.Config.Inboxes) hands a reply for that subject to
// the channel instead of publishing it. The reply is then never on the
// wire; replies from other processes still come over NATS, to the same
// channel. The zero value is ready; a nil *Inboxes delivers nothing.
// Safe for concurrent use.
type Inboxes struct {
	m sync.Map // reply subject -> chan *nats.Msg
}

// Register makes Deliver hand messages for subject to ch, until the
// returned func is called. ch should be the channel of the producer's
// subscription to subject, so that a reply comes the same way whichever
// route it took.
func (in *Inboxes) Register(subject string, ch chan *nats.Msg) (unregister func()) {
	in.m.Store(subject, ch)
	return func() { in.m.Delete(subject) }
}

// Deliver hands m to the channel registered for m.Subject and reports
// whether one was: then m must not be published. It never blocks: when
// the channel is full the message is dropped, as NATS drops a message for
// a subscription whose channel is full (the producer waits for a single
// reply, so a full channel means the reply came already).
func (in *Inboxes) Deliver(m *nats.Msg) bool {
	ch := in.lookup(m.Subject)
	if ch == nil {
		return false
	}
	select {
	case ch <- m:
	default:
	}
	return true
}

// lookup returns the channel registered for subject, or nil.
func (in *Inboxes) lookup(subject string) chan *nats.Msg {
	if in == nil {
		return nil
	}
	if v, ok := in.m.Load(subject); ok {
		return v.(chan *nats.Msg)
	}
	return nil
}
