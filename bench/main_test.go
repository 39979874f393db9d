package bench_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/bench"
)

func TestMain(m *testing.M) {
	// The smoke test starts this test binary again as its helper
	// processes (NATS, fake OpenAI server, echo).
	if bench.HelperMain() {
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
