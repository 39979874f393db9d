package broker_test

import (
	"testing"

	"github.com/llmq/llmq/broker"
)

func TestSubjectsLayout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    broker.Subjects
		want map[string]string
	}{
		{"zero value uses the default prefix", broker.Subjects{}, map[string]string{
			"jobs": "llm.jobs.tier1", "jobs wildcard": "llm.jobs.>", "worker": "llm.w.w-1", "heartbeat": "llm.hb.w-1",
			"heartbeat wildcard": "llm.hb.*", "announce": "llm.ctl.announce", "queue": "llm-dispatchers", "retry": "llm.retry",
		}},
		{"explicit default prefix", broker.Subjects{Prefix: broker.DefaultPrefix}, map[string]string{
			"jobs": "llm.jobs.tier1", "worker": "llm.w.w-1",
		}},
		{"dotted prefix", broker.Subjects{Prefix: "acme.prod"}, map[string]string{
			"jobs": "acme.prod.jobs.tier1", "jobs wildcard": "acme.prod.jobs.>", "worker": "acme.prod.w.w-1", "heartbeat": "acme.prod.hb.w-1",
			"heartbeat wildcard": "acme.prod.hb.*", "announce": "acme.prod.ctl.announce", "queue": "acme.prod-dispatchers", "retry": "acme.prod.retry",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := map[string]string{
				"jobs": tt.s.Jobs("tier1"), "jobs wildcard": tt.s.JobsWildcard(), "worker": tt.s.Worker("w-1"),
				"heartbeat": tt.s.Heartbeat("w-1"), "heartbeat wildcard": tt.s.HeartbeatWildcard(), "announce": tt.s.Announce(),
				"queue": tt.s.DispatcherQueue(), "retry": tt.s.Retry(),
			}
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("%s = %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

func TestSubjectsTierParsesJobsSubjects(t *testing.T) {
	t.Parallel()
	def, acme := broker.Subjects{}, broker.Subjects{Prefix: "acme.prod"}
	tests := []struct {
		name    string
		s       broker.Subjects
		subject string
		tier    string
		ok      bool
	}{
		{"simple tier", def, "llm.jobs.tier1", "tier1", true},
		{"tier with dots", def, "llm.jobs.gpu.large.v2", "gpu.large.v2", true},
		{"one-character tier", def, "llm.jobs.x", "x", true},
		{"no tier", def, "llm.jobs.", "", false},
		{"no jobs token", def, "llm.jobs", "", false},
		{"prefix only", def, "llm", "", false},
		{"empty", def, "", "", false},
		{"foreign prefix", def, "other.jobs.tier1", "", false},
		{"prefix that extends ours", def, "llmx.jobs.tier1", "", false},
		{"prefix as a later token", def, "x.llm.jobs.tier1", "", false},
		{"worker subject", def, "llm.w.tier1", "", false},
		{"heartbeat subject", def, "llm.hb.tier1", "", false},
		{"jobs-like token", def, "llm.jobsx.tier1", "", false},
		{"dotted prefix", acme, "acme.prod.jobs.t.a", "t.a", true},
		{"default prefix under a dotted one", acme, "llm.jobs.t", "", false},
		{"part of a dotted prefix", acme, "acme.jobs.t", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tier, ok := tt.s.Tier(tt.subject)
			if tier != tt.tier || ok != tt.ok {
				t.Fatalf("Tier(%q) = %q, %v; want %q, %v", tt.subject, tier, ok, tt.tier, tt.ok)
			}
		})
	}
	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		for _, s := range []broker.Subjects{def, acme} {
			for _, tier := range []string{"t", "tier-1", "a.b.c", "UPPER_case"} {
				if got, ok := s.Tier(s.Jobs(tier)); !ok || got != tier {
					t.Errorf("%q: Tier(Jobs(%q)) = %q, %v", s.Prefix, tier, got, ok)
				}
			}
		}
	})
}

func TestValidTier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tier string
		want bool
	}{
		{"tier1", true},
		{"gpu.large", true},
		{"a-b_c", true},
		{"ÜNICODE", true},
		{"", false},
		{"a b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\rb", false},
		{"*", false},
		{"a.*", false},
		{">", false},
		{"a.>", false},
		{".a", false},
		{"a.", false},
		{"a..b", false},
		{".", false},
	}
	for _, tt := range tests {
		t.Run(tt.tier, func(t *testing.T) {
			t.Parallel()
			if got := broker.ValidTier(tt.tier); got != tt.want {
				t.Fatalf("ValidTier(%q) = %v, want %v", tt.tier, got, tt.want)
			}
		})
	}
}

func TestTokenMakesOneSafeSubjectToken(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"abc-DEF_09", "abc-DEF_09"},
		{"a.b", "a_b"},
		{"a b*c>d", "a_b_c_d"},
		{"host:11434/v1", "host_11434_v1"},
		{"é", "__"}, // byte by byte
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got := broker.Token(tt.in)
			if got != tt.want {
				t.Fatalf("Token(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !broker.ValidTier(got) && got != "" {
				t.Fatalf("Token(%q) = %q is not a valid subject token", tt.in, got)
			}
		})
	}
}
