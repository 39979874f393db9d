package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	runNATSNodeIfAsked() // the test binary doubles as a NATS cluster node
	goleak.VerifyTestMain(m)
}
