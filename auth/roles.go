// Package auth is llmq's permission model: the NATS subjects each kind of
// client (role) publishes and subscribes to, and the nats-server
// authorization config and nkeys that give each user only its role's
// subjects. The role table here is the single source of truth: `llmq auth
// init` generates configs from it, and docs/security.md shows it (a test
// keeps the two equal).
package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/llmq/llmq/broker"
)

// Role names.
const (
	Producer       = "producer"
	Gateway        = "gateway"
	Dispatcher     = "dispatcher"
	Worker         = "worker"
	BatchRunner    = "batch-runner"
	BatchSubmitter = "batch-submitter"
	Operator       = "operator"
)

// Role is one kind of llmq client and the subjects it needs. Subjects are
// templates: {p} is the subject prefix, {t} the prefix as one token (the
// batch streams' names start with it), {inbox} the user's inbox prefix
// _INBOX.<user>. Whatever a role does not list, it may not do.
type Role struct {
	Name string
	// Runs says which commands and components connect as this role.
	Runs string
	// Publish and Subscribe are the subjects allowed.
	Publish, Subscribe []string
	// Responses lets the user publish, within ResponsesExpire, to the
	// reply subject of a message it received (nats-server's
	// allow_responses): how a producer cancels a stream and how a gateway
	// answers a $SRV request, without any other publish right.
	Responses bool
}

// micro returns the subjects a NATS micro service named name listens on:
// $SRV.<verb>, $SRV.<verb>.<name>, $SRV.<verb>.<name>.<id>.
func micro(name string) []string {
	return []string{"$SRV.*", "$SRV.*." + name, "$SRV.*." + name + ".*"}
}

// Batch store names, as the batch package lays them out (batch/doc.go).
const (
	jobsStream    = "{t}_batch_jobs"
	resultsStream = "{t}_batch_results"
	metaStream    = "KV_{t}_batches"
)

// openStore is what opening the batch store takes: look the streams and
// the bucket up.
func openStore() []string {
	return []string{"$JS.API.STREAM.INFO." + jobsStream, "$JS.API.STREAM.INFO." + resultsStream, "$JS.API.STREAM.INFO." + metaStream}
}

// createStore is what creating the store takes, and setting its replicas
// (--batch-replicas): only batch runners do, since the right to create or
// update a stream is the right to point it at any subject, producers'
// jobs included.
func createStore() []string {
	s := []string{"$JS.API.INFO"} // creating the bucket reads the account's limits
	for _, op := range []string{"CREATE", "UPDATE"} {
		for _, name := range []string{jobsStream, resultsStream, metaStream} {
			s = append(s, "$JS.API.STREAM."+op+"."+name)
		}
	}
	return s
}

// watchMeta is what reading the batches bucket takes: get a key (direct
// get), and list or watch keys (an ordered consumer on the bucket's
// stream, answering the server's flow control when it falls behind).
func watchMeta() []string {
	return []string{
		"$JS.API.DIRECT.GET." + metaStream + ".>",
		"$JS.API.CONSUMER.CREATE." + metaStream + ".>",
		"$JS.API.CONSUMER.DELETE." + metaStream + ".*",
		"$JS.FC." + metaStream + ".>",
	}
}

func cat(lists ...[]string) []string { return slices.Concat(lists...) }

// Roles is the permission model, one entry per role.
func Roles() []Role {
	return []Role{
		{
			Name:      Producer,
			Runs:      "llmq complete; your applications (client package, raw NATS requests)",
			Publish:   []string{"{p}.jobs.>", "{p}.cancel.{inbox}.>"}, // cancel its own jobs only
			Subscribe: []string{"{inbox}.>"},
			Responses: true,
		},
		{
			Name:      Gateway,
			Runs:      "llmq gateway (the OpenAI HTTP API: a producer that also reads heartbeats for /v1/models)",
			Publish:   []string{"{p}.jobs.>", "{p}.cancel.{inbox}.>", "{p}.ctl.announce"},
			Subscribe: cat([]string{"{inbox}.>", "{p}.hb.*", "{p}.ctl.gateway.*.stats"}, micro("llmq-gateway")),
			Responses: true,
		},
		{
			Name: Dispatcher,
			Runs: "llmq dispatcher (with --no-batch; without it the dispatcher also runs a batch runner and needs that role too)",
			Publish: []string{
				"{p}.w.*",          // forward a job to the worker picked
				"{p}.jobs.>",       // hand held jobs back when stopping
				"{p}.ctl.announce", // ask workers to beat at start
				"_INBOX.>",         // error replies to any producer's inbox, $SRV replies
			},
			Subscribe: cat([]string{"{p}.jobs.>", "{p}.retry", "{p}.hb.*", "{p}.ctl.dispatcher.*.stats"}, micro("llmq-dispatcher")),
		},
		{
			Name: Worker,
			Runs: "llmq worker",
			Publish: []string{
				"{p}.hb.*",  // heartbeats
				"{p}.retry", // bounce a failed job to the dispatchers
				"_INBOX.>",  // answers and stream chunks to any producer's inbox, $SRV replies
			},
			Subscribe: cat([]string{"{p}.w.*", "{p}.ctl.announce", "{p}.cancel.>", "{inbox}.>", "{p}.ctl.worker.*.stats"}, micro("llmq-worker")),
		},
		{
			Name: BatchRunner,
			Runs: "llmq batch-runner; the batch runner inside llmq dispatcher and llmq up",
			Publish: cat([]string{
				"{p}.jobs.>", // runs batch jobs as a producer (Llmq-Priority: batch)
				"{p}.ctl.announce",
				"{p}.batch.results.>", "{p}.batch.failed.>", // store results
			}, openStore(), createStore(), []string{
				"$JS.API.CONSUMER.CREATE." + jobsStream + ".>", // one durable consumer per tier
				"$JS.API.CONSUMER.MSG.NEXT." + jobsStream + ".*",
				"$JS.ACK." + jobsStream + ".>",
				"$JS.API.STREAM.MSG.GET." + resultsStream, // a job's stored result, on redelivery
				"$JS.API.STREAM.MSG.GET." + jobsStream,    // whether a tier has jobs before a consumer is made for it
			}, watchMeta()),
			Subscribe: []string{"{inbox}.>", "{p}.hb.*", "{p}.batch.runners"},
			Responses: true, // answers llmq batch status on {p}.batch.runners
		},
		{
			Name: BatchSubmitter,
			Runs: "llmq batch submit, status, results, cancel, delete, list (after a batch runner created the store)",
			Publish: cat([]string{
				"{p}.batch.jobs.>", // store jobs
				"{p}.batch.runners",
				"$KV.{t}_batches.>", // create, cancel, delete batches
			}, openStore(), []string{
				"$JS.API.STREAM.PURGE." + jobsStream, // cancel, delete
				"$JS.API.STREAM.PURGE." + resultsStream,
				"$JS.API.CONSUMER.CREATE." + jobsStream + ".>", // count jobs
				"$JS.API.CONSUMER.DELETE." + jobsStream + ".*",
				"$JS.API.CONSUMER.CREATE." + resultsStream + ".>", // count and read results
				"$JS.API.CONSUMER.DELETE." + resultsStream + ".*",
				"$JS.API.CONSUMER.MSG.NEXT." + resultsStream + ".*",
			}, watchMeta()),
			Subscribe: []string{"{inbox}.>"},
		},
		{
			Name:      Operator,
			Runs:      "llmq status, llmq top, nats micro ls/stats",
			Publish:   []string{"{p}.ctl.announce", "$SRV.>"},
			Subscribe: []string{"{inbox}.>", "{p}.hb.*"},
		},
	}
}

// RoleByName returns the role called name.
func RoleByName(name string) (Role, error) {
	for _, r := range Roles() {
		if r.Name == name {
			return r, nil
		}
	}
	return Role{}, fmt.Errorf("unknown role %q (roles: %s)", name, strings.Join(RoleNames(), ", "))
}

// RoleNames lists the roles in table order.
func RoleNames() []string {
	var names []string
	for _, r := range Roles() {
		names = append(names, r.Name)
	}
	return names
}

// Inbox is the inbox prefix of user: what it passes as --inbox-prefix (or
// nats.CustomInboxPrefix) and the only inbox subjects it may read.
func Inbox(user string) string { return "_INBOX." + user }

// expand fills a template in.
func expand(tmpl, prefix, user string) string {
	return strings.NewReplacer("{p}", prefix, "{t}", broker.Token(prefix), "{inbox}", Inbox(user)).Replace(tmpl)
}

// Permissions are a user's concrete subjects.
type Permissions struct {
	Publish, Subscribe []string
	Responses          bool
}

// PermissionsFor returns the union of roles' subjects for user on
// prefix, each subject once, in table order.
func PermissionsFor(prefix, user string, roles ...string) (Permissions, error) {
	var p Permissions
	add := func(list []string, tmpls []string) []string {
		for _, t := range tmpls {
			if s := expand(t, prefix, user); !slices.Contains(list, s) {
				list = append(list, s)
			}
		}
		return list
	}
	for _, name := range roles {
		r, err := RoleByName(name)
		if err != nil {
			return Permissions{}, err
		}
		p.Publish = add(p.Publish, r.Publish)
		p.Subscribe = add(p.Subscribe, r.Subscribe)
		p.Responses = p.Responses || r.Responses
	}
	return p, nil
}

// Table renders the role table as Markdown for prefix, with the user's
// name left as <user>.
func Table(prefix string) string {
	var b strings.Builder
	b.WriteString("| Role | Connects as it | Publish | Subscribe | Responses |\n")
	b.WriteString("|---|---|---|---|---|\n")
	code := func(tmpls []string) string {
		out := make([]string, len(tmpls))
		for i, t := range tmpls {
			out[i] = "`" + expand(t, prefix, "<user>") + "`"
		}
		return strings.Join(out, "<br>")
	}
	for _, r := range Roles() {
		resp := "no"
		if r.Responses {
			resp = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Name, r.Runs, code(r.Publish), code(r.Subscribe), resp)
	}
	return b.String()
}
