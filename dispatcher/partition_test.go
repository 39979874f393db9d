package dispatcher_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/dispatcher"
)

// freezer is a TCP proxy to a NATS server whose open connections can be
// frozen: bytes stop flowing both ways but nothing is closed, as when the
// server is SIGSTOPped or partitioned away. Connections made after a
// freeze flow (they reach "another node").
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*frozenPair
	wg     sync.WaitGroup
}

type frozenPair struct {
	a, b   net.Conn
	frozen chan struct{} // closed when frozen
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		f.mu.Lock()
		for _, p := range f.conns {
			_ = p.a.Close()
			_ = p.b.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *freezer) url() string { return "nats://" + f.ln.Addr().String() }

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		a, err := f.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", f.target)
		if err != nil {
			_ = a.Close()
			continue
		}
		p := &frozenPair{a: a, b: b, frozen: make(chan struct{})}
		f.mu.Lock()
		f.conns = append(f.conns, p)
		f.mu.Unlock()
		f.wg.Add(2)
		go p.pipe(&f.wg, a, b)
		go p.pipe(&f.wg, b, a)
	}
}

// pipe copies src to dst until either closes; once frozen it stops
// copying and waits for the close.
func (p *frozenPair) pipe(wg *sync.WaitGroup, dst, src net.Conn) {
	defer wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			_, _ = io.Copy(io.Discard, src) // swallow until closed
			return
		default:
		}
		select {
		case <-p.frozen:
			return // frozen between the read and the write: drop it
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

// freeze stops every connection open now: the client side hears nothing
// more and is not closed; the server side is closed, so the server drops
// the client's subscriptions at once (as the rest of a cluster does for a
// frozen node once its route pings fail) instead of keeping them for its
// own ping interval.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.conns {
		close(p.frozen)
		_ = p.b.Close()
	}
}

// TestDispatcher_OwnConnectionFrozen_DoesNotDropItsWorkers: when the
// dispatcher's own connection freezes (its server partitioned away), beats
// stop reaching it although the workers are fine. Taking them for lost
// would re-run or fail jobs they already answered; the dispatcher keeps
// them until its connection is known to work, and after it reconnects
// elsewhere gives them a fresh three intervals.
func TestDispatcher_OwnConnectionFrozen_DoesNotDropItsWorkers(t *testing.T) {
	t.Parallel()
	e := setup(t)
	proxy := newFreezer(t, strings.TrimPrefix(e.srv.ClientURL(), "nats://"))
	nc, err := nats.Connect(proxy.url(), nats.PingInterval(300*time.Millisecond), nats.MaxPingsOutstanding(2),
		nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	rec := newRecorder()
	d, err := dispatcher.New(dispatcher.Config{Conn: nc, Subjects: e.subjects, Tiers: []string{"tier1"}, Observer: rec, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	e.worker("tier1", "dep-a", 2, echo()) // beats every 100 ms
	waitWorkers(t, d, "tier1", 1)

	reconnected := make(chan struct{})
	nc.SetReconnectHandler(func(*nats.Conn) { close(reconnected) })
	proxy.freeze()
	select {
	case <-reconnected: // after two unanswered pings: ~0.6-0.9 s, many beat intervals
	case <-time.After(wait):
		t.Fatal("the dispatcher's connection never gave up the frozen server")
	}
	if _, err := e.client.Complete(context.Background(), "tier1", ask("after the partition")); err != nil {
		t.Fatalf("job after the partition: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.lost) != 0 {
		t.Fatalf("workers dropped while only the dispatcher's connection was frozen: %v", rec.lost)
	}
}
