package batch_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/worker"
	"github.com/llmq/llmq/worker/provider/sim"
)

// workerEnv, when set in the environment, makes the test binary a worker
// process instead of running tests: "url|prefix|tier|concurrency|ttft".
// The crash test starts such processes and SIGKILLs them: a real process
// dying with jobs in hand, without building the llmq binary.
const workerEnv = "LLMQ_BATCH_TEST_WORKER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(workerEnv); spec != "" {
		os.Exit(runWorkerProcess(spec))
	}
	goleak.VerifyTestMain(m)
}

func runWorkerProcess(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 5 {
		fmt.Fprintln(os.Stderr, "bad", workerEnv, spec)
		return 2
	}
	conc, _ := strconv.Atoi(parts[3])
	ttft, _ := time.ParseDuration(parts[4])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	nc, err := broker.Connect(ctx, broker.ConnectConfig{URLs: []string{parts[0]}, Name: "test-worker", Logger: quiet()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer nc.Close()
	p, _ := sim.New(sim.Config{TTFT: ttft, Parallel: conc})
	w, err := worker.New(worker.Config{Conn: nc, Subjects: broker.Subjects{Prefix: parts[1]}, Tier: parts[2], Deployment: parts[2] + "-proc",
		Provider: p, ProviderName: "sim", Model: "sim", Concurrency: conc, HeartbeatInterval: 100 * time.Millisecond, Logger: quiet()})
	if err == nil {
		err = w.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("worker ready")
	<-ctx.Done()
	_ = w.Stop(context.Background())
	return 0
}
