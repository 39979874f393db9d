package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/llmq/llmq/schema"
)

// HTTPDoer is the part of *http.Client adapters use.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// NewHTTPClient returns a client tuned for many concurrent calls to one
// host: kept-alive connections, enough idle ones per host that a busy
// worker does not redial, and no client-wide time-out (each call is bounded
// by its context instead).
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// MaxErrorBody bounds how much of an error body is read.
const MaxErrorBody = 64 << 10

// PostJSON sends body as JSON to url with the given headers and returns the
// response. A transport failure is returned as a typed error (see
// TransportError). The caller closes the body.
func PostJSON(ctx context.Context, c HTTPDoer, url string, headers http.Header, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, schema.Errorf(schema.CodeInternal, "encode request: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return nil, schema.Errorf(schema.CodeInternal, "build request: %v", err)
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, TransportError(ctx, err)
	}
	return resp, nil
}

// ReadErrorBody reads at most MaxErrorBody bytes of an error response and
// closes it.
func ReadErrorBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	resp.Body.Close()
	return b
}
