package ollama

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// Name is the provider's name in configs, errors and heartbeats.
const Name = "ollama"

// DefaultAPIBase is the host a local Ollama listens on.
const DefaultAPIBase = "http://localhost:11434"

// Limits on what is read from the host, so a broken upstream cannot grow a
// worker's memory without bound.
const (
	// MaxReply bounds a non-streamed reply body by default
	// (Options.MaxReplyBytes).
	MaxReply = provider.MaxReplyBytes
	// MaxLine bounds one line of a streamed reply.
	MaxLine = 4 << 20
)

// Provider calls one model on one Ollama host. It is safe for concurrent
// use.
type Provider struct {
	o        provider.Options
	model    string
	base     string // api_base without a trailing slash
	host     string // base without user info, for messages and heartbeats
	chatURL  string
	tagsURL  string
	embedURL string
	// keepAlive is sent with every chat when set (WithKeepAlive).
	keepAlive json.RawMessage
	// res is what the adapter knows of the host's loaded models
	// (residency.go).
	res residency
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Streamer = (*Provider)(nil)
)

// New returns an adapter for o.Model on the host o.APIBase (default
// DefaultAPIBase). APIBase is the host root: http://host:11434, not
// .../api or .../v1 (that is Ollama's OpenAI-compatible endpoint, served by
// the openai adapter). A path prefix, as behind a proxy, is kept. Options
// (WithKeepAlive) add what only Ollama has.
func New(o provider.Options, opts ...Option) (*Provider, error) {
	o = o.WithDefaults()
	model := strings.TrimSpace(o.Model)
	if model == "" {
		return nil, errors.New("ollama: option Model is required (e.g. \"qwen2.5-coder:14b\")")
	}
	base := strings.TrimSpace(o.APIBase)
	if base == "" {
		base = DefaultAPIBase
	}
	base = strings.TrimRight(base, "/")
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("ollama: option APIBase %q is not a URL: %w", redactBase(base), err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ollama: option APIBase %q must be an http(s) URL of the host root, like %s",
			redactBase(base), DefaultAPIBase)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ollama: option APIBase %q must not have a query or fragment", redactBase(base))
	}
	for _, suffix := range []string{"/v1", "/api", "/api/chat"} {
		if strings.HasSuffix(u.Path, suffix) {
			return nil, fmt.Errorf("ollama: option APIBase %q must be the host root (like %s), without %q",
				redactBase(base), DefaultAPIBase, suffix)
		}
	}
	p := &Provider{
		o:        o,
		model:    model,
		base:     base,
		host:     redactBase(base),
		chatURL:  base + "/api/chat",
		tagsURL:  base + "/api/tags",
		embedURL: base + "/api/embed",
	}
	for _, opt := range opts {
		if err := opt(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Host returns the api_base the adapter calls, without any user info, so
// it can be shown in heartbeats and messages.
func (p *Provider) Host() string { return p.host }

// Model returns the model name the adapter asks the host for.
func (p *Provider) Model() string { return p.model }

// Complete sends the conversation with "stream": false and returns the
// whole reply.
func (p *Provider) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	body, err := p.chatBody(ctx, req, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := provider.CallContext(ctx, p.o.Timeout)
	defer cancel()
	p.res.begin()
	var load time.Duration
	ok := false
	defer func() { p.res.end(ok, load) }()
	resp, err := provider.PostJSON(ctx, p.o.HTTP, p.chatURL, p.headers("application/json"), body)
	if err != nil {
		return nil, p.clean(schema.AsError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, p.httpError(resp)
	}
	var r chatResponse
	if err := json.NewDecoder(provider.LimitReader(resp.Body, p.o.MaxReplyBytes, "reply")).Decode(&r); err != nil {
		return nil, p.readError(ctx, err)
	}
	// Read what is left (a newline) so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if msg := errorText(r.Error); msg != "" {
		return nil, p.clean(bodyError("reply", msg))
	}
	if !r.Done {
		return nil, schema.NewError(schema.CodeProviderError,
			"ollama: reply is not final (done is false): the host streamed despite \"stream\": false")
	}
	calls, err := toolCalls(r.Message.ToolCalls, 0)
	if err != nil {
		return nil, err
	}
	ok, load = true, time.Duration(r.LoadDuration)
	return p.response(&r, r.Message.Content, calls)
}

// Stream sends the conversation with "stream": true, calls emit with each
// piece of text and each tool call in order, and returns the whole reply
// once the line with "done": true arrives. Ollama sends a tool call whole,
// in one line: it is emitted as one piece with its id, name and all its
// arguments, indexed across the stream.
func (p *Provider) Stream(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
	body, err := p.chatBody(ctx, req, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := provider.CallContext(ctx, p.o.StreamTimeout)
	defer cancel()
	p.res.begin()
	var load time.Duration
	ok := false
	defer func() { p.res.end(ok, load) }()
	resp, err := provider.PostJSON(ctx, p.o.HTTP, p.chatURL, p.headers("application/x-ndjson"), body)
	if err != nil {
		return nil, p.clean(schema.AsError(err))
	}
	// Closing the body before it is read to the end drops the connection,
	// which is how Ollama learns to stop generating.
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, p.httpError(resp)
	}

	sc := bufio.NewScanner(provider.LimitReader(resp.Body, p.o.MaxStreamBytes, "stream"))
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	sc.Split(lines)
	var content strings.Builder
	var calls []schema.ToolCall
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var chunk chatResponse
		if err := json.Unmarshal(line, &chunk); err != nil {
			return nil, schema.Errorf(schema.CodeProviderError, "ollama: malformed stream line: %v", err)
		}
		if msg := errorText(chunk.Error); msg != "" {
			return nil, p.clean(bodyError("stream", msg))
		}
		if d := chunk.Message.Content; d != "" {
			content.WriteString(d)
			if err := emit(provider.Text(d)); err != nil {
				cancel()
				return nil, err
			}
		}
		if len(chunk.Message.ToolCalls) > 0 {
			more, err := toolCalls(chunk.Message.ToolCalls, len(calls))
			if err != nil {
				return nil, err
			}
			if err := emit(toolPieces(more, len(calls))); err != nil {
				cancel()
				return nil, err
			}
			calls = append(calls, more...)
		}
		if chunk.Done {
			ok, load = true, time.Duration(chunk.LoadDuration)
			return p.response(&chunk, content.String(), calls)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, schema.Errorf(schema.CodePayloadTooLarge, "ollama: stream line longer than %d bytes", MaxLine)
		}
		return nil, p.clean(named(provider.TransportError(ctx, err)))
	}
	if ctx.Err() != nil {
		return nil, p.clean(named(provider.TransportError(ctx, ctx.Err())))
	}
	return nil, schema.NewError(schema.CodeConnection,
		"ollama: stream ended before its final line (\"done\": true)")
}

// lines splits a stream into newline-ended lines, as bufio.ScanLines does,
// except that an unended last line is dropped rather than handed over as
// whole: the body ended (or its read failed, at the deadline say) in the
// middle of it, which the caller reports as the cut or the read error it
// is, not as a malformed line.
func lines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte{'\r'}), nil
	}
	if atEOF {
		return len(data), nil, nil
	}
	return 0, nil, nil
}

// headers returns the request headers: Accept, and the key as a bearer
// token when one is configured (for a proxy in front of Ollama).
func (p *Provider) headers(accept string) http.Header {
	h := http.Header{"Accept": {accept}}
	if p.o.APIKey != "" {
		h.Set("Authorization", "Bearer "+p.o.APIKey)
	}
	return h
}

// toolPieces returns the piece that adds calls, whole, to choice 0; the
// first is call number first of the reply.
func toolPieces(calls []schema.ToolCall, first int) schema.ChunkChoice {
	var ch schema.ChunkChoice
	for i, tc := range calls {
		ch.Delta.ToolCalls = append(ch.Delta.ToolCalls, schema.ToolCallDelta{Index: first + i, ID: tc.ID,
			Type: schema.ToolTypeFunction, Function: schema.FunctionCallDelta{Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
	}
	return ch
}

// response builds the OpenAI-shaped response from the final reply, the
// text and the tool calls.
func (p *Provider) response(r *chatResponse, content string, calls []schema.ToolCall) (*schema.Response, error) {
	finish, err := finishReason(r.DoneReason, len(calls) > 0)
	if err != nil {
		return nil, err
	}
	model := r.Model
	if model == "" {
		model = p.model
	}
	return &schema.Response{
		ID:    provider.NewID(),
		Model: model,
		Choices: []schema.Choice{{
			Message:      schema.Message{Role: schema.RoleAssistant, Content: schema.Content(content), ToolCalls: calls},
			FinishReason: finish,
		}},
		Usage: schema.Usage{
			PromptTokens:     r.PromptEvalCount,
			CompletionTokens: r.EvalCount,
			TotalTokens:      r.PromptEvalCount + r.EvalCount,
		},
	}, nil
}

// redactBase returns an api_base without its user info.
func redactBase(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.User == nil {
		if i := strings.LastIndexByte(base, '@'); i >= 0 {
			if j := strings.Index(base, "://"); j >= 0 && j < i {
				return base[:j+3] + base[i+1:]
			}
		}
		return base
	}
	u.User = nil
	return u.String()
}
