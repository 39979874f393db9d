package provider_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestStatusErrorClassifiesHTTPStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status     int
		h          http.Header
		code       string
		retryAfter time.Duration
	}{
		{400, nil, schema.CodeBadRequest, 0},
		{401, nil, schema.CodeAuthentication, 0},
		{403, nil, schema.CodeAuthentication, 0},
		{404, nil, schema.CodeNotFound, 0},
		{408, nil, schema.CodeTimeout, 0},
		{413, nil, schema.CodePayloadTooLarge, 0},
		{422, nil, schema.CodeBadRequest, 0},
		{429, nil, schema.CodeRateLimited, 0},
		{429, header("Retry-After", "7"), schema.CodeRateLimited, 7 * time.Second},
		{429, header("Retry-After-Ms", "250"), schema.CodeRateLimited, 250 * time.Millisecond},
		{500, nil, schema.CodeProviderError, 0},
		{502, nil, schema.CodeProviderError, 0},
		{503, header("Retry-After", "2"), schema.CodeProviderError, 2 * time.Second},
		{529, header("retry-after-ms", "1500"), schema.CodeRateLimited, 1500 * time.Millisecond},
		{418, nil, schema.CodeProviderError, 0},
		{409, nil, schema.CodeProviderError, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %v", tt.status, tt.h), func(t *testing.T) {
			t.Parallel()
			e := provider.StatusError("acme", tt.status, tt.h, "  upstream says no \n")
			if e.Code != tt.code {
				t.Fatalf("code = %s, want %s", e.Code, tt.code)
			}
			want := schema.NewError(tt.code, "")
			if e.Type != want.Type || e.Status != want.Status {
				t.Fatalf("type/status = %s/%d, want %s/%d", e.Type, e.Status, want.Type, want.Status)
			}
			if e.ProviderStatus != tt.status {
				t.Fatalf("ProviderStatus = %d, want %d", e.ProviderStatus, tt.status)
			}
			if want := fmt.Sprintf("acme: HTTP %d: upstream says no", tt.status); e.Message != want {
				t.Fatalf("message = %q, want %q", e.Message, want)
			}
			if got := e.RetryAfter(); got != tt.retryAfter {
				t.Fatalf("RetryAfter = %v, want %v", got, tt.retryAfter)
			}
		})
	}
	t.Run("HTTP-date Retry-After", func(t *testing.T) {
		t.Parallel()
		h := header("Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
		e := provider.StatusError("acme", 429, h, "")
		if d := e.RetryAfter(); d < 28*time.Second || d > 30*time.Second {
			t.Fatalf("RetryAfter = %v, want about 30 s", d)
		}
	})
}

func TestRetryAfterEdgeCases(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name     string
		h        http.Header
		min, max time.Duration
	}{
		{"nil header", nil, 0, 0},
		{"no header", header(), 0, 0},
		{"whole seconds", header("Retry-After", "3"), 3 * time.Second, 3 * time.Second},
		{"fractional seconds", header("Retry-After", "1.5"), 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"surrounding spaces", header("Retry-After", "  4 "), 4 * time.Second, 4 * time.Second},
		{"zero", header("Retry-After", "0"), 0, 0},
		{"negative", header("Retry-After", "-5"), 0, 0},
		{"garbage", header("Retry-After", "soon"), 0, 0},
		{"HTTP date in the future", header("Retry-After", now.Add(90*time.Second).UTC().Format(http.TimeFormat)), 88 * time.Second, 90 * time.Second},
		{"HTTP date in the past", header("Retry-After", now.Add(-time.Hour).UTC().Format(http.TimeFormat)), 0, 0},
		{"RFC 850 date", header("Retry-After", now.Add(time.Hour).UTC().Format(time.RFC850)), 58 * time.Minute, time.Hour},
		{"retry-after-ms", header("Retry-After-Ms", "120"), 120 * time.Millisecond, 120 * time.Millisecond},
		{"fractional retry-after-ms", header("Retry-After-Ms", "0.5"), 500 * time.Microsecond, 500 * time.Microsecond},
		{"retry-after-ms wins over Retry-After", header("Retry-After-Ms", "120", "Retry-After", "9"), 120 * time.Millisecond, 120 * time.Millisecond},
		{"bad retry-after-ms falls back to Retry-After", header("Retry-After-Ms", "x", "Retry-After", "9"), 9 * time.Second, 9 * time.Second},
		{"zero retry-after-ms falls back to Retry-After", header("Retry-After-Ms", "0", "Retry-After", "9"), 9 * time.Second, 9 * time.Second},
		{"NaN seconds", header("Retry-After", "NaN"), 0, 0},
		{"infinite seconds", header("Retry-After", "Inf"), 0, 0},
		{"infinite milliseconds", header("Retry-After-Ms", "+Inf"), 0, 0},
		{"seconds beyond a Duration", header("Retry-After", "1e300"), 0, 0},
		{"milliseconds beyond a Duration", header("Retry-After-Ms", "1e18"), 0, 0},
		{"out-of-range float", header("Retry-After", "1e400"), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := provider.RetryAfter(tt.h)
			if d < tt.min || d > tt.max {
				t.Fatalf("RetryAfter = %v, want within [%v, %v]", d, tt.min, tt.max)
			}
		})
	}
}

// timeoutErr is a net.Error that timed out, as a dialer or a read deadline
// reports.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestTransportErrorClassifiesErrors(t *testing.T) {
	t.Parallel()
	live := context.Background()
	expired, cancel1 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel1()
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	own := schema.NewError(schema.CodeAuthentication, "bad key")
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		code string
		msg  string
	}{
		{"deadline error", live, context.DeadlineExceeded, schema.CodeTimeout, "timed out"},
		{"expired context with any error", expired, io.EOF, schema.CodeTimeout, "timed out"},
		{"cancel error", live, fmt.Errorf("x: %w", context.Canceled), schema.CodeCancelled, "cancelled"},
		{"cancelled context with any error", cancelled, errors.New("read: use of closed connection"), schema.CodeCancelled, "cancelled"},
		{"refused", live, &net.OpError{Op: "dial", Net: "tcp", Err: &os_SyscallError{syscall.ECONNREFUSED}}, schema.CodeConnection, "connection refused"},
		{"reset", live, &net.OpError{Op: "read", Net: "tcp", Err: &os_SyscallError{syscall.ECONNRESET}}, schema.CodeConnection, "connection dropped"},
		{"unexpected EOF", live, io.ErrUnexpectedEOF, schema.CodeConnection, "connection dropped"},
		{"EOF", live, &url.Error{Op: "Post", URL: "http://h/x", Err: io.EOF}, schema.CodeConnection, "connection dropped"},
		{"net timeout", live, &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, schema.CodeTimeout, "timed out"},
		{"anything else", live, errors.New("no such host"), schema.CodeConnection, "provider unreachable: no such host"},
		{"typed error passes through", expired, fmt.Errorf("wrapped: %w", own), schema.CodeAuthentication, "bad key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := provider.TransportError(tt.ctx, tt.err)
			if e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("TransportError = %+v, want %s containing %q", e, tt.code, tt.msg)
			}
		})
	}
}

// os_SyscallError stands in for *os.SyscallError: it unwraps to an errno.
type os_SyscallError struct{ errno syscall.Errno }

func (e *os_SyscallError) Error() string { return "connect: " + e.errno.Error() }
func (e *os_SyscallError) Unwrap() error { return e.errno }

func TestTransportErrorRedactsQueryKeys(t *testing.T) {
	t.Parallel()
	const secret = "AIzaSECRET-key_123"
	tests := []struct {
		name string
		err  error
	}{
		{"url.Error, unclassified", &url.Error{Op: "Post", URL: "https://gen.example/v1/m:gen?key=" + secret + "&alt=sse", Err: errors.New("tls: handshake failure")}},
		{"url.Error, dropped", &url.Error{Op: "Post", URL: "https://gen.example/v1/m:gen?alt=sse&key=" + secret, Err: io.ErrUnexpectedEOF}},
		{"url.Error, refused", &url.Error{Op: "Post", URL: "http://127.0.0.1:1/x?key=" + secret, Err: &os_SyscallError{syscall.ECONNREFUSED}}},
		{"bare URL without quotes", fmt.Errorf("GET http://h/x?key=%s failed", secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := provider.TransportError(context.Background(), tt.err)
			if strings.Contains(e.Message, secret) || strings.Contains(e.Error(), "SECRET") {
				t.Fatalf("message leaks the key: %q", e.Message)
			}
			if e.Code != schema.CodeConnection {
				t.Fatalf("code = %s", e.Code)
			}
		})
	}
	t.Run("real refused connection", func(t *testing.T) {
		t.Parallel()
		c := newClient(t)
		_, err := provider.PostJSON(context.Background(), c, deadURL(t)+"/v1beta/models/m:generateContent?key="+secret, nil, map[string]int{})
		e := schema.AsError(err)
		if e.Code != schema.CodeConnection || !strings.Contains(e.Message, "connection refused") {
			t.Fatalf("err = %v, want connection_error: connection refused", err)
		}
		if strings.Contains(e.Message, secret) {
			t.Fatalf("message leaks the key: %q", e.Message)
		}
		if !strings.Contains(e.Message, "/v1beta/models/m:generateContent") {
			t.Fatalf("message %q lost the path; only the query should go", e.Message)
		}
	})
}

// newClient returns provider.NewHTTPClient, with its idle connections
// closed when the test ends.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	c := provider.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// deadURL is the URL of a loopback port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// hijackServer runs an HTTP server whose handler writes raw, then drops the
// connection.
func hijackServer(t *testing.T, raw string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = buf.WriteString(raw)
		_ = buf.Flush()
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// stallServer runs an HTTP server that never answers, until the client
// goes away or the test ends.
func stallServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client leave
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv
}

func TestTransportErrorOfRealFailures(t *testing.T) {
	t.Parallel()
	t.Run("context deadline while the server stalls", func(t *testing.T) {
		t.Parallel()
		srv := stallServer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := provider.PostJSON(ctx, newClient(t), srv.URL, nil, map[string]int{})
		if schema.CodeOf(err) != schema.CodeTimeout {
			t.Fatalf("err = %v, want timeout", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
	})
	t.Run("context cancelled while the server stalls", func(t *testing.T) {
		t.Parallel()
		srv := stallServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := provider.PostJSON(ctx, newClient(t), srv.URL, nil, map[string]int{})
		if schema.CodeOf(err) != schema.CodeCancelled {
			t.Fatalf("err = %v, want cancelled", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		_, err := provider.PostJSON(context.Background(), newClient(t), deadURL(t), nil, map[string]int{})
		if e := schema.AsError(err); e.Code != schema.CodeConnection || !strings.Contains(e.Message, "connection refused") {
			t.Fatalf("err = %v, want connection_error: connection refused", err)
		}
	})
	t.Run("connection closed before any answer", func(t *testing.T) {
		t.Parallel()
		srv := hijackServer(t, "")
		_, err := provider.PostJSON(context.Background(), newClient(t), srv.URL, nil, map[string]int{})
		if e := schema.AsError(err); e.Code != schema.CodeConnection || !strings.Contains(e.Message, "connection dropped") {
			t.Fatalf("err = %v, want connection_error: connection dropped", err)
		}
	})
	t.Run("connection dropped mid-response", func(t *testing.T) {
		t.Parallel()
		srv := hijackServer(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"partial\":")
		ctx := context.Background()
		resp, err := provider.PostJSON(ctx, newClient(t), srv.URL, nil, map[string]int{})
		if err != nil {
			t.Fatalf("PostJSON: %v", err)
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		if err == nil {
			t.Fatal("reading a cut body succeeded")
		}
		if e := provider.TransportError(ctx, err); e.Code != schema.CodeConnection || !strings.Contains(e.Message, "connection dropped") {
			t.Fatalf("TransportError = %+v, want connection dropped", e)
		}
	})
	t.Run("net timeout from a read deadline", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				accepted <- c
			}
			close(accepted)
		}()
		conn, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if peer := <-accepted; peer != nil {
			defer peer.Close()
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err = conn.Read(make([]byte, 1))
		if e := provider.TransportError(context.Background(), err); e.Code != schema.CodeTimeout {
			t.Fatalf("TransportError(%v) = %+v, want timeout", err, e)
		}
	})
}
