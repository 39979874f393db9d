package bench

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// EchoQueue is the queue group of Echo's subscriber.
const EchoQueue = "bench-echo"

// Echo answers every request on subject with its own payload, at once,
// from one queue subscriber: the raw NATS request-reply baseline llmq is
// compared with.
func Echo(nc *nats.Conn, subject string) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(subject, EchoQueue, func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("bench: echo: %w", err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("bench: echo: %w", err)
	}
	return sub, nil
}
