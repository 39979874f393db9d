package batch

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/llmq/llmq/broker"
)

// Headers on the messages llmq keeps in its batch streams.
const (
	// HeaderBatchID names the batch of a job or result.
	HeaderBatchID = "Llmq-Batch-Id"
	// HeaderCustomID is the job's custom_id, as submitted.
	HeaderCustomID = "Llmq-Custom-Id"
	// HeaderBatchTier is the tier a job runs on (body.model).
	HeaderBatchTier = "Llmq-Batch-Tier"
	// HeaderResultStatus is "ok" or "error" on a stored result.
	HeaderResultStatus = "Llmq-Result-Status"
)

// MaxCustomIDLen is the longest custom_id accepted, in bytes.
const MaxCustomIDLen = 512

// names lays out the streams, bucket and subjects of one prefix.
type names struct {
	prefix string
	tok    string
}

func newNames(s broker.Subjects) names {
	p := s.Prefix
	if p == "" {
		p = broker.DefaultPrefix
	}
	return names{prefix: p, tok: broker.Token(p)}
}

// Stream and bucket names (see doc.go).
func (n names) jobsStream() string    { return n.tok + "_batch_jobs" }
func (n names) resultsStream() string { return n.tok + "_batch_results" }
func (n names) metaBucket() string    { return n.tok + "_batches" }

// jobSubject is <prefix>.batch.jobs.<batch>.<key>.<tier>: one subject per
// job, so the stream itself refuses a second copy of a job.
func (n names) jobSubject(batch, customID, tier string) string {
	return n.prefix + ".batch.jobs." + batch + "." + key(customID) + "." + tier
}
func (n names) jobsAll() string                 { return n.prefix + ".batch.jobs.>" }
func (n names) jobsOfBatch(batch string) string { return n.prefix + ".batch.jobs." + batch + ".>" }
func (n names) jobsOfTier(tier string) string   { return n.prefix + ".batch.jobs.*.*." + tier }

// resultSubject is <prefix>.batch.results.<batch>.<key>: one result per job.
func (n names) resultSubject(batch, customID string) string {
	return n.prefix + ".batch.results." + batch + "." + key(customID)
}
func (n names) resultsOfBatch(batch string) string {
	return n.prefix + ".batch.results." + batch + ".>"
}

// failedSubject marks a job whose result is an error, so that failures
// can be counted without reading results.
func (n names) failedSubject(batch, customID string) string {
	return n.prefix + ".batch.failed." + batch + "." + key(customID)
}
func (n names) failedOfBatch(batch string) string { return n.prefix + ".batch.failed." + batch + ".>" }

// runners is the subject batch runners answer "what are you running" on.
func (n names) runners() string { return n.prefix + ".batch.runners" }

// consumerName is the durable consumer runners share for a tier.
func (n names) consumerName(tier string) string {
	h := fnv.New32a()
	h.Write([]byte(tier))
	return fmt.Sprintf("runner_%s_%08x", broker.Token(tier), h.Sum32())
}

// key encodes a custom_id as one subject token.
func key(customID string) string { return base64.RawURLEncoding.EncodeToString([]byte(customID)) }

// ValidID reports whether id can name a batch: 1 to 64 letters, digits,
// '-' or '_'.
func ValidID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return broker.Token(id) == id
}

// StoreConfig says how the batch streams are created. The zero value
// creates file-backed streams with one replica and keeps batches until
// they are deleted.
type StoreConfig struct {
	// Replicas of each stream and of the bucket (1 to 5; a NATS cluster
	// needs at least as many JetStream servers). Default 1 for streams
	// created here. When set, existing streams with another replica count
	// are updated to it; when 0 they are left as they are.
	Replicas int
	// MaxAge, when set, removes jobs and results older than it. Default:
	// kept until the batch is deleted.
	MaxAge time.Duration
}

type store struct {
	names
	js      jetstream.JetStream
	jobs    jetstream.Stream
	results jetstream.Stream
	meta    jetstream.KeyValue
}

// openStore creates the streams and bucket when missing.
func openStore(ctx context.Context, js jetstream.JetStream, n names, c StoreConfig) (*store, error) {
	if c.Replicas < 0 || c.Replicas > 5 {
		return nil, fmt.Errorf("batch: replicas %d: want 1 to 5", c.Replicas)
	}
	r := c.Replicas
	if r == 0 {
		r = 1
	}
	s := &store{names: n, js: js}
	var err error
	s.jobs, err = ensureStream(ctx, js, jetstream.StreamConfig{
		Name: n.jobsStream(), Description: "llmq batch jobs, one subject per job",
		Subjects: []string{n.jobsAll()}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
		Replicas: r, MaxAge: c.MaxAge, Duplicates: 2 * time.Minute,
	}, c.Replicas > 0)
	if err != nil {
		return nil, err
	}
	s.results, err = ensureStream(ctx, js, jetstream.StreamConfig{
		Name: n.resultsStream(), Description: "llmq batch results, one subject per job",
		Subjects:  []string{n.prefix + ".batch.results.>", n.prefix + ".batch.failed.>"},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Replicas: r, MaxAge: c.MaxAge,
	}, c.Replicas > 0)
	if err != nil {
		return nil, err
	}
	s.meta, err = js.KeyValue(ctx, n.metaBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		s.meta, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: n.metaBucket(), Description: "llmq batches", Storage: jetstream.FileStorage, Replicas: r, History: 1,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			s.meta, err = js.KeyValue(ctx, n.metaBucket())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("batch: bucket %s: %w", n.metaBucket(), err)
	}
	if c.Replicas > 0 {
		st, err := s.meta.Status(ctx)
		if err == nil {
			if ks, ok := st.(*jetstream.KeyValueBucketStatus); ok && ks.StreamInfo().Config.Replicas != c.Replicas {
				sc := ks.StreamInfo().Config
				sc.Replicas = c.Replicas
				if _, err := js.UpdateStream(ctx, sc); err != nil {
					return nil, fmt.Errorf("batch: bucket %s: set replicas: %w", n.metaBucket(), err)
				}
			}
		}
	}
	return s, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig, setReplicas bool) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, sc.Name)
		}
	} else if err == nil && setReplicas && s.CachedInfo().Config.Replicas != sc.Replicas {
		cfg := s.CachedInfo().Config
		cfg.Replicas = sc.Replicas
		s, err = js.UpdateStream(ctx, cfg)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("batch: %w (run the NATS server with JetStream: nats-server -js, or llmq up)", ErrNoJetStream)
		}
		return nil, fmt.Errorf("batch: stream %s: %w", sc.Name, err)
	}
	return s, nil
}

// ErrNoJetStream means the NATS server does not run JetStream.
var ErrNoJetStream = errors.New("JetStream is not enabled on the NATS server")

// count returns how many messages of s match filter, with a throw-away
// consumer whose pending count is what the server knows.
func count(ctx context.Context, s jetstream.Stream, filter string) (int, error) {
	var c jetstream.Consumer
	err := retryTransient(ctx, func() (err error) {
		c, err = s.CreateConsumer(ctx, jetstream.ConsumerConfig{
			FilterSubject: filter, AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
			InactiveThreshold: 30 * time.Second, MemoryStorage: true, Replicas: 1,
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("batch: count %s: %w", filter, err)
	}
	n := int(c.CachedInfo().NumPending)
	_ = s.DeleteConsumer(context.WithoutCancel(ctx), c.CachedInfo().Name)
	return n, nil
}

// retryTransient runs fn until it succeeds, fails for good, or 15 s of
// transient failures pass: a NATS cluster electing a stream leader after a
// node's loss answers "no responders" or nothing for a moment.
func retryTransient(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(15 * time.Second)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		err := fn()
		if err == nil || !transient(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

func transient(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrTimeout)
}

// isDuplicate reports whether err is the stream refusing a second message
// on a subject (expected last subject sequence 0).
func isDuplicate(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return err != nil && strings.Contains(err.Error(), "wrong last sequence")
}
