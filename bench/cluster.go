package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

// cluster is a topology of separate processes on loopback: an embedded
// NATS server in a helper process, helpers, and llmq commands against it.
type cluster struct {
	r     *runner
	dir   string
	url   string
	procs []*proc // in start order
	conns []*nats.Conn
}

// newCluster starts the NATS helper.
func (r *runner) newCluster() (*cluster, error) {
	dir, err := os.MkdirTemp("", "llmq-bench-")
	if err != nil {
		return nil, err
	}
	c := &cluster{r: r, dir: dir}
	p, ready, err := startHelper(helperSpec{Kind: "nats"})
	if err != nil {
		c.close()
		return nil, err
	}
	c.procs = append(c.procs, p)
	c.url = ready.URL
	return c, nil
}

// helper starts a helper process.
func (c *cluster) helper(spec helperSpec) (*proc, helperReady, error) {
	spec.NATS = c.url
	p, ready, err := startHelper(spec)
	if err != nil {
		return nil, ready, err
	}
	c.procs = append(c.procs, p)
	return p, ready, nil
}

// llmq starts an llmq command against the cluster's NATS.
func (c *cluster) llmq(name string, args ...string) (*proc, error) {
	args = append(args, "--nats", c.url, "--log-level", "warn", "--log-format", "json")
	p, _, err := startProc(name, c.r.o.LLMQ, args, nil, false, 0)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// connect opens a producer connection.
func (c *cluster) connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(c.url, nats.Name(name), nats.ReconnectBufSize(64<<20))
	if err != nil {
		return nil, fmt.Errorf("bench: connect %s: %w", c.url, err)
	}
	c.conns = append(c.conns, nc)
	return nc, nil
}

// file writes a file in the cluster's directory and returns its path.
func (c *cluster) file(name, content string) (string, error) {
	p := filepath.Join(c.dir, name)
	return p, os.WriteFile(p, []byte(content), 0o600)
}

// close stops everything, last started first.
func (c *cluster) close() {
	for _, nc := range c.conns {
		nc.Close()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(10 * time.Second)
	}
	_ = os.RemoveAll(c.dir)
}

// pids names the cluster's processes and the load generator (pid 0:
// this process), for CPU accounting.
func (c *cluster) pids() map[string]int {
	m := map[string]int{"load generator": 0}
	for _, p := range c.procs {
		m[strings.TrimPrefix(p.name, "helper ")] = p.Pid()
	}
	return m
}

// check returns the failure of a process that exited.
func (c *cluster) check() error {
	for _, p := range c.procs {
		if !p.alive() {
			return p.failure()
		}
	}
	return nil
}

// waitReady sends req to tier until it succeeds: the dispatcher listens
// and a worker of the tier serves.
func (c *cluster) waitReady(ctx context.Context, cl *client.Client, tier string, req *schema.Request) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		if err := c.check(); err != nil {
			return err
		}
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := cl.Complete(cctx, tier, req)
		ccancel()
		if err == nil {
			return nil
		}
		last = err
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return errors.Join(fmt.Errorf("bench: tier %s not ready: %w", tier, ctx.Err()), last)
}
