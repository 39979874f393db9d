package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestUp_InProcessHandOffs checks that llmq up hands jobs between its own
// parts in process: the gateway's jobs to up's dispatcher, the
// dispatcher's to up's workers, the workers' replies to the gateway. A spy
// sees none of them on the job, worker and inbox subjects, and sees the
// job a producer publishes and its reply.
func TestUp_InProcessHandOffs(t *testing.T) {
	t.Parallel()
	u := startUp(t, "--gateway", "127.0.0.1:0")
	base := u.Stdout.await(t, gatewayRE, nil)[1]
	spy := connectTo(t, u)
	var jobs, forwards, replies *nats.Subscription
	var err error
	if jobs, err = spy.SubscribeSync(u.Prefix + ".jobs.>"); err != nil {
		t.Fatal(err)
	}
	if replies, err = spy.SubscribeSync("_INBOX.>"); err != nil {
		t.Fatal(err)
	}
	if forwards, err = spy.SubscribeSync(u.Prefix + ".w.>"); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: wait}
	for range 3 {
		resp, err := c.Post(base+"/chat/completions", "application/json",
			strings.NewReader(`{"model":"tier2","messages":[{"role":"user","content":"hi"}],"max_tokens":3}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if _, errOut, err := u.run(t, "complete", "--tier", "tier2", "--max-tokens", "3", "hello"); err != nil {
		t.Fatalf("complete: %v\n%s", err, errOut)
	}
	// The server queues each job for the spy as it routes it, before any
	// reply to it exists, and the flush's PONG comes after all of them.
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := jobs.Pending(); n != 1 {
		t.Errorf("%d jobs published on %s.jobs.>, want 1 (llmq complete's; the gateway's go to the dispatcher in process)", n, u.Prefix)
	}
	if n, _, _ := forwards.Pending(); n != 0 {
		t.Errorf("%d jobs published on %s.w.>, want 0 (the dispatcher hands them to up's workers in process)", n, u.Prefix)
	}
	if n, _, _ := replies.Pending(); n != 1 {
		t.Errorf("%d replies published on _INBOX.>, want 1 (llmq complete's; the gateway's come in process)", n)
	}
}
