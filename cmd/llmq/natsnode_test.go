package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsNodeEnv makes the test binary run as one NATS cluster node (see
// runNATSNode) instead of running tests; its value is the JSON natsNodeSpec.
// A node in a process of its own can be frozen (SIGSTOP) like a partitioned
// machine, which an in-process server cannot.
const natsNodeEnv = "LLMQ_TEST_NATS_NODE"

// natsNodeSpec is one node of a test cluster.
type natsNodeSpec struct {
	Name string `json:"name"`
	// Routes are the cluster URLs of nodes already running; the others are
	// learned from them (the server's route gossip).
	Routes []string `json:"routes,omitempty"`
	// RoutePing and RoutePingsOut set how fast a node gives up a route to
	// a peer that stopped answering (cluster ping_interval, ping_max);
	// zero keeps the server's defaults (2 min, capped to 30 s for routes;
	// 2).
	RoutePing     time.Duration `json:"route_ping,omitempty"`
	RoutePingsOut int           `json:"route_pings_out,omitempty"`
}

// natsNodeReady is the first line a node prints, once it accepts clients.
// Every change in the number of peers it has routes to follows as a line
// {"peers":n,"at":...}.
type natsNodeReady struct {
	Client  string `json:"client"`
	Cluster string `json:"cluster"`
}

// runNATSNodeIfAsked runs this process as a cluster node when natsNodeEnv
// is set, and then exits; otherwise it returns at once. TestMain calls it
// first.
func runNATSNodeIfAsked() {
	raw := os.Getenv(natsNodeEnv)
	if raw == "" {
		return
	}
	var spec natsNodeSpec
	err := json.Unmarshal([]byte(raw), &spec)
	if err == nil {
		err = runNATSNode(spec)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nats node %s: %v\n", raw, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runNATSNode serves until SIGTERM or the end of stdin (the test holds it
// open: should the test binary die, its nodes go with it).
func runNATSNode(spec natsNodeSpec) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	opts := &server.Options{
		ServerName: spec.Name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoSigs:     true,
		NoLog:      true,
		Cluster: server.ClusterOpts{
			Name:         "llmq-test",
			Host:         "127.0.0.1",
			Port:         server.RANDOM_PORT,
			PingInterval: spec.RoutePing,
			MaxPingsOut:  spec.RoutePingsOut,
		},
	}
	for _, r := range spec.Routes {
		u := server.RoutesFromStr(r)
		if len(u) == 0 {
			return fmt.Errorf("bad route %q", r)
		}
		opts.Routes = append(opts.Routes, u...)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	go srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	if !srv.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("not ready after 10s")
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(natsNodeReady{Client: srv.ClientURL(), Cluster: fmt.Sprintf("nats-route://%s", srv.ClusterAddr())}); err != nil {
		return err
	}
	// Report the peers this node has routes to, as they change: the test
	// waits for a full mesh, and the log shows when a frozen peer's route
	// was given up.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := -1
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		rz, err := srv.Routez(nil)
		if err != nil {
			continue
		}
		peers := map[string]bool{}
		for _, r := range rz.Routes {
			peers[r.RemoteID] = true
		}
		if len(peers) != last {
			last = len(peers)
			_ = out.Encode(map[string]any{"peers": last, "at": time.Now().Format("15:04:05.000")})
		}
	}
}

// natsNode is a cluster node running as a child process.
type natsNode struct {
	name        string
	clientURL   string
	clusterURL  string
	cmd         *exec.Cmd
	stdout      *outBuf
	stderr      *outBuf
	exitErr     chan error    // the exit, for the wait at start
	exit        chan struct{} // closed when the process has exited
	stdinCloser io.Closer
}

var nodeReadyRE = regexp.MustCompile(`\{"client":"(nats://[^"]+)","cluster":"(nats-route://[^"]+)"\}`)

// startNATSNode starts this test binary as the node spec and waits until
// it accepts clients. The node is thawed (should it be frozen) and killed
// when the test ends.
func startNATSNode(t *testing.T, spec natsNodeSpec) *natsNode {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	n := &natsNode{name: spec.Name, stdout: newOutBuf(), stderr: newOutBuf(), exitErr: make(chan error, 1), exit: make(chan struct{})}
	n.cmd = exec.Command(self)
	n.cmd.Env = append(os.Environ(), natsNodeEnv+"="+string(raw))
	n.cmd.Stdout, n.cmd.Stderr = n.stdout, n.stderr
	stdin, err := n.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.stdinCloser = stdin
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start nats node %s: %v", spec.Name, err)
	}
	go func() {
		n.exitErr <- n.cmd.Wait()
		close(n.exit)
	}()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGCONT) // a frozen node would not stop
		_ = n.stdinCloser.Close()
		_ = n.cmd.Process.Kill()
		<-n.exit
	})
	m := n.stdout.await(t, nodeReadyRE, n.exitErr)
	n.clientURL, n.clusterURL = m[1], m[2]
	return n
}

// peers is how many peers the node last reported routes to.
func (n *natsNode) peers() int {
	lines := strings.Split(strings.TrimSpace(n.stdout.String()), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var p struct {
			Peers *int `json:"peers"`
		}
		if json.Unmarshal([]byte(lines[i]), &p) == nil && p.Peers != nil {
			return *p.Peers
		}
	}
	return 0
}

// startNATSCluster starts size nodes routed to each other (each new node
// to the first; the servers complete the mesh) and waits for the full
// mesh.
func startNATSCluster(t *testing.T, size int, spec natsNodeSpec) []*natsNode {
	t.Helper()
	var nodes []*natsNode
	for i := range size {
		s := spec
		s.Name = fmt.Sprintf("n%d", i)
		if i > 0 {
			s.Routes = []string{nodes[0].clusterURL}
		}
		nodes = append(nodes, startNATSNode(t, s))
	}
	deadline := time.Now().Add(wait)
	for _, n := range nodes {
		for n.peers() != size-1 {
			if time.Now().After(deadline) {
				t.Fatalf("node %s has routes to %d peers, not %d, after %s; stderr:\n%s", n.name, n.peers(), size-1, wait, n.stderr.String())
			}
			time.Sleep(20 * time.Millisecond) // polling the node's report
		}
	}
	return nodes
}
