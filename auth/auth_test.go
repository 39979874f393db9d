package auth_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/llmq/llmq/auth"
	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/gateway"
	"github.com/llmq/llmq/worker"
)

// matches reports whether subject matches the NATS filter.
func matches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || tok != "*" && tok != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

func allowed(list []string, subject string) bool {
	return slices.ContainsFunc(list, func(f string) bool { return matches(f, subject) })
}

// TestRoles_CoverTheSubjectsTheComponentsUse checks each role against the
// subjects broker.Subjects builds and the components' micro service names:
// a subject renamed in code must be renamed here.
func TestRoles_CoverTheSubjectsTheComponentsUse(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{Prefix: "acme.llm"}
	perms := func(user string, roles ...string) auth.Permissions {
		p, err := auth.PermissionsFor(s.Name(), user, roles...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	micro := func(name string) []string {
		return []string{"$SRV.PING", "$SRV.STATS." + name, "$SRV.INFO." + name + ".abc"}
	}
	cases := []struct {
		role     string
		pub, sub []string
	}{
		{auth.Producer, []string{s.Jobs("t1")}, []string{"_INBOX.u.abc.def"}},
		{auth.Gateway, []string{s.Jobs("t1"), s.Announce()},
			append([]string{"_INBOX.u.abc", s.Heartbeat("w1"), s.ServiceStats("gateway", "g8080")}, micro(gateway.ServiceName)...)},
		{auth.Dispatcher, []string{s.Worker("w1"), s.Jobs("t1"), s.Announce(), "_INBOX.other.abc.def"},
			append([]string{s.Jobs("t1"), s.Retry(), s.Heartbeat("w1"), s.ServiceStats("dispatcher", "d1")}, micro(dispatcher.ServiceName)...)},
		{auth.Worker, []string{s.Heartbeat("w1"), s.Retry(), "_INBOX.other.abc.def"},
			append([]string{s.Worker("w1"), s.Announce(), "_INBOX.u.abc.defs.xyz", s.ServiceStats("worker", "w1")}, micro(worker.ServiceName)...)},
		{auth.BatchRunner, []string{s.Jobs("t1"), s.Announce(), "acme.llm.batch.results.b.k", "acme.llm.batch.failed.b.k",
			"$JS.API.STREAM.INFO.acme_llm_batch_jobs", "$JS.API.CONSUMER.MSG.NEXT.acme_llm_batch_jobs.runner_t1_0a",
			"$JS.ACK.acme_llm_batch_jobs.runner_t1_0a.1.2.3.4.5", "$JS.API.DIRECT.GET.KV_acme_llm_batches.$KV.acme_llm_batches.b"},
			[]string{"_INBOX.u.x", s.Heartbeat("w1"), "acme.llm.batch.runners"}},
		{auth.BatchSubmitter, []string{"acme.llm.batch.jobs.b.k.t1", "acme.llm.batch.runners", "$KV.acme_llm_batches.b",
			"$JS.API.STREAM.PURGE.acme_llm_batch_jobs", "$JS.API.STREAM.INFO.KV_acme_llm_batches"},
			[]string{"_INBOX.u.x"}},
		{auth.Operator, []string{s.Announce(), "$SRV.STATS.llmq-worker"}, []string{"_INBOX.u.x", s.Heartbeat("w1")}},
	}
	for _, c := range cases {
		p := perms("u", c.role)
		for _, subj := range c.pub {
			if !allowed(p.Publish, subj) {
				t.Errorf("%s may not publish %s; it needs to", c.role, subj)
			}
		}
		for _, subj := range c.sub {
			if !allowed(p.Subscribe, subj) {
				t.Errorf("%s may not subscribe to %s; it needs to", c.role, subj)
			}
		}
	}
}

// TestRoles_ProducerCannotTouchInternalSubjects: what a producer's
// credentials must never allow, whatever else changes in the table.
func TestRoles_ProducerCannotTouchInternalSubjects(t *testing.T) {
	t.Parallel()
	s := broker.Subjects{}
	for _, role := range []string{auth.Producer, auth.Gateway} {
		p, err := auth.PermissionsFor(s.Name(), "alice", role)
		if err != nil {
			t.Fatal(err)
		}
		for _, subj := range []string{s.Heartbeat("w1"), s.Retry(), s.Worker("w1"), "llm.batch.jobs.b.k.t1",
			"$JS.API.STREAM.DELETE.llm_batch_jobs", "$KV.llm_batches.b", "_INBOX.bob.x", "$SRV.PING"} {
			if allowed(p.Publish, subj) {
				t.Errorf("%s may publish %s", role, subj)
			}
		}
		for _, subj := range []string{s.Jobs("t1"), "_INBOX.bob.x", "_INBOX.x", s.Retry(), s.Worker("w1")} {
			if allowed(p.Subscribe, subj) {
				t.Errorf("%s may subscribe to %s", role, subj)
			}
		}
	}
}

// TestRoles_OnlyRunnersCreateOrUpdateStreams: a stream's config names the
// subjects it captures, so whoever may create or update the batch streams
// could make them capture producers' jobs.
func TestRoles_OnlyRunnersCreateOrUpdateStreams(t *testing.T) {
	t.Parallel()
	for _, r := range auth.Roles() {
		p, err := auth.PermissionsFor("llm", "u", r.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, subj := range []string{"$JS.API.STREAM.CREATE.llm_batch_jobs", "$JS.API.STREAM.UPDATE.llm_batch_results", "$JS.API.STREAM.UPDATE.KV_llm_batches"} {
			if allowed(p.Publish, subj) != (r.Name == auth.BatchRunner) {
				t.Errorf("%s: may publish %s: %v", r.Name, subj, allowed(p.Publish, subj))
			}
		}
		if allowed(p.Publish, "$JS.API.STREAM.DELETE.llm_batch_jobs") || allowed(p.Publish, "$JS.API.STREAM.CREATE.evil") {
			t.Errorf("%s may delete the batch streams or create others", r.Name)
		}
	}
}

// TestGenerate_ServerLoadsConfig_WithEachUsersPermissions loads the
// generated config with nats-server's own parser.
func TestGenerate_ServerLoadsConfig_WithEachUsersPermissions(t *testing.T) {
	t.Parallel()
	users := append(auth.DefaultUsers(auth.RoleNames()), auth.User{Name: "alice", Roles: []string{auth.Producer}})
	g, err := auth.Generate(auth.Config{Prefix: "acme", Users: users, Listen: "127.0.0.1:4333", StoreDir: "/var/lib/nats"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := auth.WriteFiles(dir, "/etc/llmq/auth", g, false); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, auth.ServerConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Host != "127.0.0.1" || opts.Port != 4333 || !opts.JetStream || opts.StoreDir != "/var/lib/nats" || len(opts.Users) != 0 {
		t.Errorf("host %s port %d jetstream %v store %s users %d", opts.Host, opts.Port, opts.JetStream, opts.StoreDir, len(opts.Users))
	}
	if len(opts.Nkeys) != len(users) {
		t.Fatalf("%d nkey users, want %d", len(opts.Nkeys), len(users))
	}
	for i, c := range g.Credentials {
		nk := opts.Nkeys[i]
		if nk.Nkey != c.PublicKey {
			t.Fatalf("user %d: nkey %s, want %s", i, nk.Nkey, c.PublicKey)
		}
		kp, err := nkeys.FromSeed(c.Seed)
		if err != nil {
			t.Fatal(err)
		}
		if pub, _ := kp.PublicKey(); pub != c.PublicKey {
			t.Errorf("%s: seed and public key differ", c.Name)
		}
		want, _ := auth.PermissionsFor("acme", c.Name, c.Roles...)
		if p := nk.Permissions; !slices.Equal(p.Publish.Allow, want.Publish) || !slices.Equal(p.Subscribe.Allow, want.Subscribe) ||
			(p.Response != nil) != want.Responses || p.Publish.Deny != nil || p.Subscribe.Deny != nil ||
			p.Response != nil && (p.Response.MaxMsgs >= 0 || p.Response.Expires != auth.ResponsesExpire) {
			t.Errorf("%s: server read %+v %+v %+v, want %+v", c.Name, p.Publish, p.Subscribe, p.Response, want)
		}
		if !slices.Contains(want.Subscribe, "_INBOX."+c.Name+".>") {
			t.Errorf("%s may not read its own inbox: %v", c.Name, want.Subscribe)
		}
		env, err := os.ReadFile(filepath.Join(dir, auth.EnvFile(c.Name)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(env), "LLMQ_NKEY=/etc/llmq/auth/"+c.Name+".nk\nLLMQ_INBOX_PREFIX=_INBOX."+c.Name+"\n") {
			t.Errorf("%s.env:\n%s", c.Name, env)
		}
		if strings.Contains(string(g.ServerConfig), string(c.Seed)) {
			t.Errorf("the server config holds %s's seed", c.Name)
		}
	}
	if got := g.Credentials[2]; got.Name != auth.Dispatcher || !slices.Equal(got.Roles, []string{auth.Dispatcher, auth.BatchRunner}) {
		t.Errorf("the default dispatcher user is %+v; it runs a batch runner too", got.User)
	}
}

func TestWriteFiles_SeedsPrivate_ExistingFilesKeptUnlessOverwrite(t *testing.T) {
	t.Parallel()
	g, err := auth.Generate(auth.Config{Users: auth.DefaultUsers([]string{auth.Producer})})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "auth")
	if _, err := auth.WriteFiles(dir, "", g, false); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{".": 0o700, "producer.nk": 0o600, "producer.env": 0o600, auth.ServerConfigFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	seed, _ := os.ReadFile(filepath.Join(dir, "producer.nk"))
	if _, err := nkeys.ParseDecoratedNKey(seed); err != nil {
		t.Errorf("seed file: %v", err)
	}
	g2, _ := auth.Generate(auth.Config{Users: auth.DefaultUsers([]string{auth.Producer})})
	if _, err := auth.WriteFiles(dir, "", g2, false); err == nil || !strings.Contains(err.Error(), "producer.nk") {
		t.Fatalf("second write without overwrite: %v", err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "producer.nk")); string(again) != string(seed) {
		t.Fatal("a refused write changed the seed")
	}
	_ = os.Chmod(filepath.Join(dir, "producer.nk"), 0o644)
	if _, err := auth.WriteFiles(dir, "", g2, true); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "producer.nk")); fi.Mode().Perm() != 0o600 {
		t.Errorf("overwritten seed has mode %v", fi.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestGenerate_RefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, c := range []auth.Config{
		{},
		{Users: []auth.User{{Name: "a.b", Roles: []string{auth.Producer}}}},
		{Users: []auth.User{{Name: "a*", Roles: []string{auth.Producer}}}},
		{Users: []auth.User{{Name: strings.Repeat("a", auth.MaxUserLen+1), Roles: []string{auth.Producer}}}},
		{Users: []auth.User{{Name: "a", Roles: []string{"admin"}}}},
		{Users: []auth.User{{Name: "a"}}},
		{Users: []auth.User{{Name: "a", Roles: []string{auth.Producer}}, {Name: "a", Roles: []string{auth.Worker}}}},
		{Prefix: "llm.>", Users: auth.DefaultUsers([]string{auth.Producer})},
		{Prefix: "a..b", Users: auth.DefaultUsers([]string{auth.Producer})},
		{Listen: "nope", Users: auth.DefaultUsers([]string{auth.Producer})},
	} {
		if _, err := auth.Generate(c); err == nil {
			t.Errorf("Generate(%+v) succeeded", c)
		}
	}
	for _, s := range []string{"alice", "=producer", "alice=", "alice=root", "a b=producer"} {
		if _, err := auth.ParseUser(s); err == nil {
			t.Errorf("ParseUser(%q) succeeded", s)
		}
	}
	if u, err := auth.ParseUser("ops=operator+batch-submitter"); err != nil || u.Name != "ops" || len(u.Roles) != 2 {
		t.Errorf("ParseUser: %+v %v", u, err)
	}
}

// TestDocs_RoleTableMatchesCode keeps docs/security.md's role table equal
// to Roles(): the table is generated (llmq auth roles), not hand-edited.
func TestDocs_RoleTableMatchesCode(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- roles:begin (llmq auth roles) -->\n", "<!-- roles:end -->"
	doc := string(raw)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("docs/security.md lacks the %q … %q markers", begin, end)
	}
	if got, want := doc[i+len(begin):j], auth.Table(broker.DefaultPrefix); got != want {
		t.Errorf("docs/security.md's role table differs from the code; paste `llmq auth roles` between the markers.\ngot:\n%s\nwant:\n%s", got, want)
	}
}
