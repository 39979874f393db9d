package provider

import (
	"context"
	"time"

	"github.com/llmq/llmq/schema"
)

// Provider completes one chat request. It returns a *schema.Response with
// Choices, Usage, ID and Model filled, or an error that is (or wraps) a
// *schema.Error classifying the failure. It must honour ctx.
type Provider interface {
	Complete(ctx context.Context, req *schema.Request) (*schema.Response, error)
}

// Func adapts a function to Provider.
type Func func(ctx context.Context, req *schema.Request) (*schema.Response, error)

// Complete calls f.
func (f Func) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	return f(ctx, req)
}

// Streamer is the optional capability of streaming tokens as they come.
// Stream calls emit for each piece of text, in order, and returns the whole
// response (content, finish reason, usage) when the stream ends. When emit
// returns an error Stream stops, cancels the upstream call and returns that
// error. An error that arrives inside an open stream is returned as a typed
// error like any other.
type Streamer interface {
	Stream(ctx context.Context, req *schema.Request, emit func(delta string) error) (*schema.Response, error)
}

// Options configure an adapter. Keys are never logged or put in errors.
type Options struct {
	// Model is the provider's model name, without llmq's or LiteLLM's
	// prefix ("qwen2.5-coder:14b", not "ollama/qwen2.5-coder:14b").
	Model string
	// APIBase is the endpoint. For OpenAI-compatible servers it includes the
	// version path ("http://host:8000/v1"); for Ollama, Gemini and Anthropic
	// it is the host root. Empty means the provider's public endpoint.
	APIBase string
	// APIKey authenticates, when the provider needs one.
	APIKey string
	// Timeout bounds a whole non-streamed call. Default 600 s (LiteLLM's).
	Timeout time.Duration
	// StreamTimeout bounds a streamed call. Default: Timeout.
	StreamTimeout time.Duration
	// HTTP is the client to use. Default: NewHTTPClient().
	HTTP HTTPDoer
	// MaxReplyBytes and MaxStreamBytes cap what is read of a non-streamed
	// reply and of a whole stream (see LimitReader). Defaults:
	// MaxReplyBytes and MaxStreamBytes.
	MaxReplyBytes, MaxStreamBytes int64
}

// DefaultTimeout is LiteLLM's default request time-out.
const DefaultTimeout = 600 * time.Second

// WithDefaults returns o with its zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.StreamTimeout <= 0 {
		o.StreamTimeout = o.Timeout
	}
	if o.HTTP == nil {
		o.HTTP = NewHTTPClient()
	}
	if o.MaxReplyBytes <= 0 {
		o.MaxReplyBytes = MaxReplyBytes
	}
	if o.MaxStreamBytes <= 0 {
		o.MaxStreamBytes = MaxStreamBytes
	}
	return o
}

// CallContext returns ctx bounded by d, unless ctx already ends sooner.
func CallContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
