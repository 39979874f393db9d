package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// chatBody is the chat completion the gateway section sends over HTTP: the
// same request as benchRequest, as an OpenAI client writes it.
var chatBody = []byte(`{"model":"bench","messages":[{"role":"user","content":"Say hello to the benchmark in a few words."}],"max_tokens":16}`)

// choicesMarker is in every successful answer.
var choicesMarker = []byte(`"choices":[`)

// StatusError is an HTTP call answered with a status other than 200.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return "bench: HTTP " + strconv.Itoa(e.Status) + ": " + e.Body
}

// newLoadClient is the load generator's HTTP client: keep-alive, an idle
// connection kept for every client loop, no compression.
func newLoadClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        max(conns, 64),
		MaxIdleConnsPerHost: max(conns, 64),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// chatCall is a Call that POSTs chatBody to base's /chat/completions and
// reads the whole answer, which must be a 200 with choices.
func chatCall(c *http.Client, base string) Call {
	url := base + "/chat/completions"
	return func(ctx context.Context, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(chatBody))
		if err != nil {
			return err
		}
		req.Header["Content-Type"] = contentJSON
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		buf := bodyPool.Get().(*bytes.Buffer)
		defer bodyPool.Put(buf)
		buf.Reset()
		if _, err := buf.ReadFrom(io.LimitReader(resp.Body, 1<<20)); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return &StatusError{Status: resp.StatusCode, Body: string(buf.Bytes()[:min(buf.Len(), 256)])}
		}
		if !bytes.Contains(buf.Bytes(), choicesMarker) {
			return fmt.Errorf("bench: answer without choices: %.256s", buf.Bytes())
		}
		return nil
	}
}
