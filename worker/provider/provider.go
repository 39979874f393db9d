package provider

import (
	"context"
	"log/slog"
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

// Streamer is the optional capability of streaming a reply as it comes.
// Stream calls emit for each piece, in order — text, tool-call pieces in
// OpenAI's chunk shape (schema.ToolCallDelta: the first piece of a call
// has its id and name, later ones fragments of its arguments), logprobs —
// and returns the whole response (content, tool calls, finish reason,
// usage) when the stream ends. Pieces carry no finish reason: the caller
// sends it with the usage. When emit returns an error Stream stops,
// cancels the upstream call and returns that error. An error that arrives
// inside an open stream is returned as a typed error like any other.
type Streamer interface {
	Stream(ctx context.Context, req *schema.Request, emit Emit) (*schema.Response, error)
}

// Emit receives one piece of a streamed reply: the delta of choice Index
// (0 unless the request asked for n > 1), with its logprobs if any.
type Emit func(schema.ChunkChoice) error

// Text returns the piece that adds text s to choice 0.
func Text(s string) schema.ChunkChoice {
	return schema.ChunkChoice{Delta: schema.Delta{Content: s}}
}

// Embedder is the optional capability of embedding texts: req is an
// embedding job (req.IsEmbedding()). It returns one vector per input, in
// order, as floats (the worker applies req.EncodingFormat), with
// Usage.PromptTokens filled when the provider counts them.
type Embedder interface {
	Embed(ctx context.Context, req *schema.Request) (*schema.EmbeddingResponse, error)
}

// EmbedderFunc adapts a function to Embedder.
type EmbedderFunc func(ctx context.Context, req *schema.Request) (*schema.EmbeddingResponse, error)

// Embed calls f.
func (f EmbedderFunc) Embed(ctx context.Context, req *schema.Request) (*schema.EmbeddingResponse, error) {
	return f(ctx, req)
}

// Replay emits a finished response as a stream would have: each choice's
// text, then each of its tool calls whole. Workers use it for providers
// that cannot stream.
func Replay(resp *schema.Response, emit Emit) error {
	for _, c := range resp.Choices {
		ch := schema.ChunkChoice{Index: c.Index, Logprobs: c.Logprobs}
		ch.Delta.Content = c.Message.Text()
		for i, tc := range c.Message.ToolCalls {
			ch.Delta.ToolCalls = append(ch.Delta.ToolCalls, schema.ToolCallDelta{Index: i, ID: tc.ID, Type: schema.ToolTypeFunction,
				Function: schema.FunctionCallDelta{Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
		}
		if err := emit(ch); err != nil {
			return err
		}
	}
	return nil
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
	// DropParams drops a request parameter the provider cannot honour
	// (logged at debug) instead of refusing the job with a bad_request
	// naming it: LiteLLM's drop_params. Default false.
	DropParams bool
	// MaxImageBytes caps an image the adapter fetches from a URL to send
	// inline. Default schema.DefaultMaxImageBytes.
	MaxImageBytes int64
	// ImageTimeout bounds fetching one image URL. Default 10 s.
	ImageTimeout time.Duration
	// Logger receives debug lines (dropped parameters). Default: discard.
	Logger *slog.Logger
}

// DefaultTimeout is LiteLLM's default request time-out.
const DefaultTimeout = 600 * time.Second

// DefaultImageTimeout bounds fetching one image URL.
const DefaultImageTimeout = 10 * time.Second

// Unsupported answers a parameter the provider (name, as in errors) cannot
// honour: a bad_request naming it, or, with DropParams, nil after a debug
// line — the caller then leaves the parameter out.
func (o *Options) Unsupported(name, param string) error {
	if o.DropParams {
		if o.Logger != nil {
			o.Logger.Debug("parameter dropped", "provider", name, "param", param)
		}
		return nil
	}
	return schema.Errorf(schema.CodeBadRequest, "%s: %s is not supported by this provider (set drop_params: true to drop it)", name, param)
}

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
	if o.MaxImageBytes <= 0 {
		o.MaxImageBytes = schema.DefaultMaxImageBytes
	}
	if o.ImageTimeout <= 0 {
		o.ImageTimeout = DefaultImageTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
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
