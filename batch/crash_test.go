package batch_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/llmq/llmq/batch"
	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/worker/provider/sim"
)

// startWorkerProcess runs a sim worker in a child process (this test
// binary, see TestMain) and returns it once it beats.
func startWorkerProcess(t *testing.T, url, prefix, tier string, concurrency int, ttft time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%d|%s", workerEnv, url, prefix, tier, concurrency, ttft))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "worker ready") && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("worker process ended before it was ready")
		}
	case <-time.After(wait):
		t.Fatal("worker process not ready")
	}
	return cmd
}

// startJS starts a JetStream server on 127.0.0.1:port (-1: random)
// storing in dir. The caller shuts it down.
func startJS(t *testing.T, port int, dir string) *broker.Embedded {
	t.Helper()
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), JetStream: true, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A few thousand jobs run while a worker process is SIGKILLed, a
// dispatcher and a runner crash (their connections closed without Stop:
// in-process components whose goroutines the test must still reap for
// goleak, so they are stopped afterwards), and the NATS server restarts on
// the same store: every custom_id has exactly one result, all completions.
func TestBatch_ExactlyOnceThroughCrashes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startJS(t, -1, dir)
	// Registered first, so it runs last: components stop while NATS is up.
	t.Cleanup(func() { srv.Shutdown() })
	port := srv.Server().Addr().(*net.TCPAddr).Port
	url := srv.ClientURL()
	subjects := brokertest.Subjects(t)
	f := &fleet{t: t, urls: url, subjects: subjects}

	d1, d1nc := f.dispatcher("d1")
	f.dispatcher("d2")
	victim := startWorkerProcess(t, url, subjects.Prefix, "tier1", 4, 10*time.Millisecond)
	startWorkerProcess(t, url, subjects.Prefix, "tier1", 4, 10*time.Millisecond)
	p, _ := sim.New(sim.Config{TTFT: 10 * time.Millisecond, Parallel: 4})
	f.worker("tier1", "inproc", 4, p)
	r1, r1nc := f.runner("r1", nil)
	f.runner("r2", nil)
	c := f.client(0)

	const n = 3000
	submit(t, c, "crash", jobs(n, "tier1"))
	start := time.Now()
	progress := func(frac float64) {
		t.Helper()
		awaitStatus(t, c, "crash", 2*wait, func(s *batch.Status) bool { return s.Finished() >= int(frac*n) })
		t.Logf("%.0f%% done at %s", 100*frac, time.Since(start).Round(time.Millisecond))
	}

	progress(0.1)
	t.Log("SIGKILL a worker process")
	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	startWorkerProcess(t, url, subjects.Prefix, "tier1", 4, 10*time.Millisecond)

	progress(0.3)
	t.Log("crash dispatcher d1, start d3")
	d1nc.Close()
	_ = d1.Stop(context.Background())
	f.dispatcher("d3")

	progress(0.5)
	t.Log("crash runner r1")
	r1nc.Close()
	_ = r1.Stop(context.Background())

	progress(0.65)
	t.Log("restart the NATS server on the same store")
	srv.Shutdown()
	srv = startJS(t, port, dir)

	progress(0.8)
	s := awaitStatus(t, c, "crash", 3*wait, func(s *batch.Status) bool { return s.State == batch.StateCompleted })
	t.Logf("completed at %s", time.Since(start).Round(time.Millisecond))
	if s.Total != n || s.Done != n || s.Failed != 0 {
		t.Fatalf("status %+v", s)
	}
	exactlyOnce(t, c, "crash", n)
}

// freePorts returns n free loopback TCP ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// startCluster starts three JetStream servers routed to each other.
func startCluster(t *testing.T) []*server.Server {
	t.Helper()
	cports := freePorts(t, 3)
	var routes []*url.URL
	for _, p := range cports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var nodes []*server.Server
	for i := range 3 {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
			JetStream: true, StoreDir: filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i+1)),
			Cluster: server.ClusterOpts{Name: "llmq-test", Host: "127.0.0.1", Port: cports[i]},
			Routes:  routes,
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		nodes = append(nodes, s)
	}
	for _, s := range nodes {
		if !s.ReadyForConnections(wait) {
			t.Fatal("cluster node not ready")
		}
	}
	return nodes
}

// The same through the loss of one node of a three-node cluster, streams
// replicated three times.
func TestBatch_ClusterNodeLoss(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t)
	var urls []string
	for _, s := range nodes {
		urls = append(urls, s.ClientURL())
	}
	f := &fleet{t: t, urls: strings.Join(urls, ","), subjects: brokertest.Subjects(t)}
	// The JetStream meta leader takes a moment to be elected.
	var c *batch.Client
	deadline := time.Now().Add(wait)
	for c == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cl, err := batch.Open(ctx, batch.Config{Conn: connect(t, f.urls, "producer"), Subjects: f.subjects,
			Store: batch.StoreConfig{Replicas: 3}, RunnerWait: 100 * time.Millisecond})
		cancel()
		if err == nil {
			c = cl
		} else if time.Now().After(deadline) {
			t.Fatalf("open on the cluster: %v", err)
		} else {
			time.Sleep(200 * time.Millisecond) // the cluster elects a leader; no event to wait on from here
		}
	}
	js, _ := jetstream.New(connect(t, f.urls, "inspect"))
	for _, name := range []string{"_batch_jobs", "_batch_results"} {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		st, err := js.Stream(ctx, f.subjects.Prefix+name)
		cancel()
		if err != nil || st.CachedInfo().Config.Replicas != 3 {
			t.Fatalf("stream %s: %v, want 3 replicas", name, err)
		}
	}
	f.dispatcher("d1")
	for i := range 2 {
		p, _ := sim.New(sim.Config{TTFT: 5 * time.Millisecond, Parallel: 4})
		f.worker("tier1", fmt.Sprintf("w%d", i), 4, p)
	}
	f.runner("r1", func(c *batch.RunnerConfig) { c.Store.Replicas = 3 })
	const n = 1500
	submit(t, c, "cl", jobs(n, "tier1"))
	awaitStatus(t, c, "cl", 2*wait, func(s *batch.Status) bool { return s.Finished() >= n/3 })
	t.Log("shut down node n1")
	nodes[0].Shutdown()
	nodes[0].WaitForShutdown()
	s := awaitStatus(t, c, "cl", 3*wait, func(s *batch.Status) bool { return s.State == batch.StateCompleted })
	if s.Total != n || s.Done != n {
		t.Fatalf("status %+v", s)
	}
	exactlyOnce(t, c, "cl", n)
}
