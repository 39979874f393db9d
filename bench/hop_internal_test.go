package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A load call counts only a 200 with choices as a success, and names a
// refused one by its status.
func TestChatCall_OnlyACompletionSucceeds(t *testing.T) {
	t.Parallel()
	mock, err := StartOpenAI("")
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Close()
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"busy"}}`, http.StatusServiceUnavailable)
	}))
	defer refuse.Close()
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"object":"chat.completion"}`))
	}))
	defer empty.Close()
	c := newLoadClient(4)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := chatCall(c, mock.URL())(ctx, 0); err != nil {
		t.Errorf("a completion from the mock: %v", err)
	}
	if err := chatCall(c, refuse.URL+"/v1")(ctx, 0); ErrorCode(err) != "http_503" {
		t.Errorf("a 503: error %v, code %q, want http_503", err, ErrorCode(err))
	}
	if err := chatCall(c, empty.URL+"/v1")(ctx, 0); err == nil {
		t.Error("an answer without choices counted as a success")
	}
}

// The bare proxy hands requests to its target and its answers back.
func TestServeProxy_ForwardsToTheTarget(t *testing.T) {
	t.Parallel()
	mock, err := StartOpenAI("")
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Close()
	addr, stop, err := serveProxy(mock.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := newLoadClient(4)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 3 {
		if err := chatCall(c, "http://"+addr+"/v1")(ctx, 0); err != nil {
			t.Fatalf("through the proxy: %v", err)
		}
	}
	if got := mock.Stats().Served; got != 3 {
		t.Errorf("the mock served %d, want the 3 requests sent through the proxy", got)
	}
}
