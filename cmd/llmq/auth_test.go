package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/auth"
	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/broker/brokertest"
	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

// authFleet is a NATS server configured by `llmq auth init`, and the
// files it wrote.
type authFleet struct {
	t      *testing.T
	dir    string // seeds, env files, nats-server.conf
	url    string
	prefix string
	cfg    string // llmq config: one simulated tier t1, deployment d1
	procs  []*proc
}

// observer is a test-only user that may read everything: it sees whether
// a refused message reached anyone.
const observerUser, observerPass = "observer", "observer-test-pass"

// newAuthFleet writes the config with the real CLI (one user per role,
// plus producers alice and bob and a dispatcher-only user dsp) and starts
// a NATS server from it.
func newAuthFleet(t *testing.T) *authFleet {
	t.Helper()
	f := &authFleet{t: t, dir: filepath.Join(t.TempDir(), "auth"), prefix: brokertest.Subjects(t).Prefix}
	out, errOut := newOutBuf(), newOutBuf()
	cmd := newApp(out, errOut).root()
	cmd.SetArgs([]string{"auth", "init", "--out", f.dir, "--prefix", f.prefix, "--listen", "127.0.0.1:-1", "--store-dir", t.TempDir(),
		"--user", "alice=producer", "--user", "bob=producer", "--user", "dsp=dispatcher"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("auth init: %v\n%s", err, errOut)
	}
	for _, u := range []string{"producer", "alice", "bob", "dispatcher", "dsp", "worker", "gateway", "batch-runner", "batch-submitter", "operator"} {
		fi, err := os.Stat(filepath.Join(f.dir, u+".nk"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s.nk has mode %v, want 0600", u, fi.Mode().Perm())
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(f.dir, auth.ServerConfigFile))
	if err != nil {
		t.Fatalf("nats-server refuses the generated config: %v", err)
	}
	opts.Users = append(opts.Users, &server.User{Username: observerUser, Password: observerPass})
	f.url = startNATS(t, opts).ClientURL()
	f.cfg = writeConfig(t, fmt.Sprintf(`model_list:
  - model_name: t1
    litellm_params: {model: sim/small, sim: {ttft: 5ms, tokens_per_second: 500, parallel: 8}}
    model_info: {id: d1}
llmq_settings:
  prefix: %s
  heartbeat_interval: 200ms
`, f.prefix))
	return f
}

// as returns the connection flags of user.
func (f *authFleet) as(user string) []string {
	return []string{"--nats", f.url, "--prefix", f.prefix, "--nkey", filepath.Join(f.dir, auth.SeedFile(user)),
		"--inbox-prefix", auth.Inbox(user), "--log-format", "json"}
}

// start runs a long-running llmq command as user.
func (f *authFleet) start(user string, args ...string) *proc {
	p := startProc(f.t, user+" "+args[0], append(args, f.as(user)...)...)
	f.procs = append(f.procs, p)
	return p
}

// run runs a one-shot llmq command in-process as user.
func (f *authFleet) run(user string, args ...string) (stdout, stderr string, err error) {
	f.t.Helper()
	out, errOut := newOutBuf(), newOutBuf()
	cmd := newApp(out, errOut).root()
	cmd.SetArgs(append(args, f.as(user)...))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	if violation.MatchString(errOut.String()) {
		f.t.Errorf("llmq %s as %s hit a permission violation:\n%s", args[0], user, errOut)
	}
	return out.String(), errOut.String(), err
}

// forged marks what the producer under test sends where it may not.
const forged = "forged by a producer"

var violation = regexp.MustCompile(`(?i)permissions violation`)

// checkLogs fails the test if any fleet process was refused anything: a
// role missing a subject shows up there even when the flow still worked.
func (f *authFleet) checkLogs() {
	f.t.Helper()
	for _, p := range f.procs {
		if violation.MatchString(p.stderr.String()) {
			f.t.Errorf("%s hit a permission violation:\n%s", p.name, p.stderr.String())
		}
	}
}

// conn connects as user with its seed and inbox prefix; every async error
// (permission violations) goes to the returned channel, in order.
func (f *authFleet) conn(user string) (*nats.Conn, chan error) {
	f.t.Helper()
	errs := make(chan error, 64)
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(f.dir, auth.SeedFile(user)))
	if err != nil {
		f.t.Fatal(err)
	}
	nc, err := nats.Connect(f.url, opt, nats.CustomInboxPrefix(auth.Inbox(user)), nats.Name(user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		f.t.Fatalf("connect as %s: %v", user, err)
	}
	f.t.Cleanup(nc.Close)
	return nc, errs
}

// awaitViolation waits for the permission violation naming what on errs
// (skipping none: violations arrive in the order of the operations).
func awaitViolation(t *testing.T, errs chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), what) {
			t.Fatalf("got error %v, want a permission violation for %s", err, what)
		}
	case <-time.After(wait):
		t.Fatalf("no permission violation for %s: the server allowed it", what)
	}
}

func userMessage(text string) *schema.Request {
	return &schema.Request{Messages: []schema.Message{{Role: schema.RoleUser, Content: schema.Content(text)}}}
}

// TestAuth_GeneratedPermissions_FleetWorksAndProducerIsConfined runs the
// fleet against a real nats-server configured by `llmq auth init`, each
// component with its own role's seed and inbox prefix: plain, streamed,
// gateway and batch jobs work end to end with no permission violation;
// then a producer's credentials are refused every internal subject and
// other users' inboxes, and nothing it tried reached anyone.
func TestAuth_GeneratedPermissions_FleetWorksAndProducerIsConfined(t *testing.T) {
	t.Parallel()
	f := newAuthFleet(t)

	// Everything the observer sees, by subject.
	obs, err := nats.Connect(f.url, nats.UserInfo(observerUser, observerPass))
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	var (
		seenMu sync.Mutex
		seen   = map[string]int{} // messages alice forged, by subject; and the sentinel
	)
	seenCh := make(chan struct{}, 1)
	if _, err := obs.Subscribe(">", func(m *nats.Msg) {
		if string(m.Data) != forged {
			return
		}
		seenMu.Lock()
		seen[m.Subject]++
		seenMu.Unlock()
		select {
		case seenCh <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := obs.Flush(); err != nil {
		t.Fatal(err)
	}
	seenCount := func(subject string) int {
		seenMu.Lock()
		defer seenMu.Unlock()
		return seen[subject]
	}

	// The fleet, each as its role.
	d := f.start("dispatcher", "dispatcher", "-c", f.cfg)
	d.awaitLog(t, regexp.MustCompile(`"msg":"batch runner started"`))
	f.start("worker", "worker", "-c", f.cfg, "--deployment", "d1").awaitLog(t, workerUp)
	gw := f.start("gateway", "gateway", "--listen", "127.0.0.1:0")
	gwURL := gw.stdout.await(t, regexp.MustCompile(`llmq gateway: (http://\S+/v1)`), make(chan error))[1]

	t.Run("plain and streamed, as a producer", func(t *testing.T) {
		out, errOut, err := f.run("producer", "complete", "--tier", "t1", "--max-tokens", "3", "write a haiku about queues")
		if err != nil || strings.TrimSpace(out) != "write a haiku" {
			t.Fatalf("plain: %q, %v\n%s", out, err, errOut)
		}
		out, errOut, err = f.run("producer", "complete", "--tier", "t1", "--stream", "--max-tokens", "3", "streamed words here")
		if err != nil || strings.TrimSpace(out) != "streamed words here" {
			t.Fatalf("streamed: %q, %v\n%s", out, err, errOut)
		}
	})

	t.Run("gateway", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			body := fmt.Sprintf(`{"model":"t1","stream":%v,"messages":[{"role":"user","content":"through the gateway"}]}`, stream)
			resp, err := http.Post(gwURL+"/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "gateway") || stream && !strings.Contains(string(b), "data: [DONE]") {
				t.Fatalf("stream=%v: %d %s", stream, resp.StatusCode, b)
			}
		}
	})

	t.Run("operator", func(t *testing.T) {
		out, errOut, err := f.run("operator", "status", "--json")
		if err != nil || !strings.Contains(out, `"d1"`) {
			t.Fatalf("status: %v\n%s\n%s", err, out, errOut)
		}
		out, errOut, err = f.run("operator", "top", "--once", "--wait", "3s")
		if err != nil || !strings.Contains(out, "1 dispatcher(s), 1 worker(s)") {
			t.Fatalf("top: %v\n%s\n%s", err, out, errOut)
		}
	})

	batchRoundTrip := func(t *testing.T, n int) {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions","body":{"model":"t1","messages":[{"role":"user","content":"say %d"}],"max_tokens":4}}`+"\n", i, i)
		}
		path := filepath.Join(t.TempDir(), "jobs.jsonl")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := f.run("batch-submitter", "batch", "submit", path, "-q")
		if err != nil {
			t.Fatalf("submit: %v\n%s", err, errOut)
		}
		id := strings.TrimSpace(out)
		out, errOut, err = f.run("batch-submitter", "batch", "status", id, "--watch", "--interval", "100ms")
		if err != nil || !strings.Contains(out, fmt.Sprintf("done %d", n)) {
			t.Fatalf("status: %v\n%s\n%s", err, out, errOut)
		}
		out, errOut, err = f.run("batch-submitter", "batch", "results", id)
		if err != nil || strings.Count(out, `"status_code":200`) != n {
			t.Fatalf("results: %v\n%s\n%s", err, out, errOut)
		}
		if _, errOut, err := f.run("batch-submitter", "batch", "delete", id); err != nil {
			t.Fatalf("delete: %v\n%s", err, errOut)
		}
	}
	t.Run("batch, run by the dispatcher's runner", func(t *testing.T) { batchRoundTrip(t, 20) })

	t.Run("producer is confined", func(t *testing.T) {
		alice, aliceErrs := f.conn("alice")
		bob, _ := f.conn("bob")
		s := broker.Subjects{Prefix: f.prefix}

		// Publishing anywhere but jobs is refused, and reaches nobody.
		forbidden := []string{
			s.Heartbeat("d1-forged"), s.Retry(), s.Worker("d1-forged"), s.Announce(),
			s.ServiceStats("worker", "x"), f.prefix + ".batch.jobs.b.k.t1", f.prefix + ".batch.results.b.k",
			"$JS.API.STREAM.INFO." + broker.Token(f.prefix) + "_batch_jobs", "$KV." + broker.Token(f.prefix) + "_batches.b",
			"$SRV.PING", "_INBOX.bob.x", "_INBOX.worker.x",
		}
		for _, subj := range forbidden {
			if err := alice.Publish(subj, []byte(forged)); err != nil {
				t.Fatal(err)
			}
			if err := alice.Flush(); err != nil {
				t.Fatal(err)
			}
			awaitViolation(t, aliceErrs, `Publish to "`+subj+`"`)
		}
		// A job with no reply subject reaches the observer after anything
		// alice sent before it: the forged messages would be there first.
		sentinel := s.Jobs("sentinel")
		if err := alice.Publish(sentinel, []byte(forged)); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(wait)
		for seenCount(sentinel) == 0 {
			select {
			case <-seenCh:
			case <-deadline:
				t.Fatalf("the observer never saw %s", sentinel)
			}
		}
		for _, subj := range forbidden {
			if n := seenCount(subj); n != 0 {
				t.Errorf("%s: the refused publish was delivered %d times", subj, n)
			}
		}

		// Reading jobs or other users' inboxes is refused.
		var got []string
		var gotMu sync.Mutex
		for _, subj := range []string{s.JobsWildcard(), "_INBOX.bob.>", "_INBOX.>", s.HeartbeatWildcard(), ">"} {
			if _, err := alice.Subscribe(subj, func(m *nats.Msg) {
				gotMu.Lock()
				got = append(got, m.Subject)
				gotMu.Unlock()
			}); err != nil {
				t.Fatal(err)
			}
			if err := alice.Flush(); err != nil {
				t.Fatal(err)
			}
			awaitViolation(t, aliceErrs, `Subscription to "`+subj+`"`)
		}
		// bob's job and its answer pass by; alice sees none of it.
		resp, err := client.New(bob, client.Config{Subjects: s}).Complete(context.Background(), "t1", userMessage("for bob only"))
		if err != nil || !strings.HasPrefix(resp.Text(), "for bob only") {
			t.Fatalf("bob: %v %v", resp, err)
		}
		if err := alice.Flush(); err != nil {
			t.Fatal(err)
		}
		gotMu.Lock()
		if len(got) > 0 {
			t.Errorf("alice read %v", got)
		}
		gotMu.Unlock()

		// What a producer may do: plain and streamed jobs, and cancel a
		// stream by answering its chunk (allow_responses).
		c := client.New(alice, client.Config{Subjects: s})
		if _, err := c.Complete(context.Background(), "t1", userMessage("alice plain")); err != nil {
			t.Fatalf("alice plain: %v", err)
		}
		st, err := c.Stream(context.Background(), "t1", userMessage(strings.Repeat("word ", 200)))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Next(); err != nil {
			t.Fatalf("alice stream: %v", err)
		}
		st.Close() // publishes to the worker's control subject
		// Cancel a non-streamed job of hers (Llmq-Control) by its reply
		// subject, under her inbox.
		if err := alice.Publish(s.Cancel(alice.NewInbox()), nil); err != nil {
			t.Fatal(err)
		}
		// A refused publish after the cancels: had one been refused, its
		// violation would come first.
		if err := alice.Publish(s.Retry(), nil); err != nil {
			t.Fatal(err)
		}
		awaitViolation(t, aliceErrs, `Publish to "`+s.Retry()+`"`)
		// Bob's jobs are not hers to cancel.
		bobs := s.Cancel(bob.NewInbox())
		if err := alice.Publish(bobs, nil); err != nil {
			t.Fatal(err)
		}
		awaitViolation(t, aliceErrs, `Publish to "`+bobs+`"`)
	})

	// The roles separately: a dispatcher user without the batch runner's
	// subjects (--no-batch) and a standalone batch runner.
	t.Run("dispatcher --no-batch and a batch-runner, each as its own role", func(t *testing.T) {
		d.signal(t, syscall.SIGTERM)
		if err := d.wait(t); err != nil {
			t.Fatalf("dispatcher stop: %v\n%s", err, d.stderr.String())
		}
		f.start("dsp", "dispatcher", "-c", f.cfg, "--no-batch").awaitLog(t, dispatcherUp)
		f.start("batch-runner", "batch-runner", "-c", f.cfg).awaitLog(t, regexp.MustCompile(`"msg":"batch runner started"`))
		out, errOut, err := f.run("producer", "complete", "--tier", "t1", "--max-tokens", "1", "again")
		if err != nil || strings.TrimSpace(out) != "again" {
			t.Fatalf("plain: %q, %v\n%s", out, err, errOut)
		}
		batchRoundTrip(t, 10)
	})
	f.checkLogs()
}
