package gateway_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
)

// notHonoured bounds how long a test waits for the server to act on a
// limit configured at a fraction of a second: far below the limits'
// defaults (10 s and more), so a limit left at its default fails the test.
const notHonoured = 5 * time.Second

// dial opens a raw TCP connection to the gateway, closed when the test ends.
func (e *env) dial() net.Conn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.g.Addr())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether c is closed by the server within
// notHonoured, reading (and discarding) whatever it sends first.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(notHonoured))
	_, err := io.Copy(io.Discard, c)
	if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server did not close the connection within %s", notHonoured)
	}
}

func TestServer_ReadHeaderTimeout_ClosesAClientThatNeverEndsItsHeaders(t *testing.T) {
	t.Parallel()
	e := alone(t, gateway.Config{ReadHeaderTimeout: 200 * time.Millisecond})
	c := e.dial()
	if _, err := io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	closedByServer(t, c)
}

func TestServer_ReadTimeout_BoundsTheBodyNotTheJob(t *testing.T) {
	t.Parallel()
	e := setup(t, gateway.Config{ReadTimeout: 300 * time.Millisecond}, dispatcher.Config{})
	// A body that never ends.
	c := e.dial()
	if _, err := io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":"); err != nil {
		t.Fatal(err)
	}
	closedByServer(t, c)

	// A job that takes longer than the ReadTimeout is answered.
	g := newGate(t)
	e.worker("tier1", "dep-a", 1, g)
	got := make(chan *http.Response, 1)
	go func() {
		resp, err := e.http.Post(e.base+"/v1/chat/completions", "application/json", strings.NewReader(chat("tier1", "slow")))
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		got <- resp
	}()
	g.awaitStarted(t)
	<-time.After(600 * time.Millisecond) // the ReadTimeout passes while the job runs
	g.open()
	resp := <-got
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
		t.Fatalf("a job longer than the ReadTimeout: %d %s", resp.StatusCode, body)
	}
}

func TestServer_IdleTimeout_ClosesIdleKeepAliveConnections(t *testing.T) {
	t.Parallel()
	e := alone(t, gateway.Config{IdleTimeout: 200 * time.Millisecond})
	c := e.dial()
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("health: %v %+v", err, resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	closedByServer(t, c)
}

func TestServer_MaxConnections_MakesFurtherClientsWait(t *testing.T) {
	t.Parallel()
	e := alone(t, gateway.Config{MaxConnections: 2})
	health := func(c net.Conn, within time.Duration) error {
		_ = c.SetReadDeadline(time.Now().Add(within))
		if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	first, second := e.dial(), e.dial()
	for _, c := range []net.Conn{first, second} {
		if err := health(c, wait); err != nil {
			t.Fatal(err)
		}
	}
	// Both stay open (keep-alive): a third client is not served...
	third := e.dial()
	if err := health(third, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection was served over the cap of 2: %v", err)
	}
	// ...until one of them closes.
	first.Close()
	_ = third.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("third connection after one closed: %v", err)
	}
	resp.Body.Close()
}
