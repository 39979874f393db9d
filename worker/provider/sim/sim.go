package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider"
)

// Config shapes a simulated deployment. The zero value answers at once
// with 16 tokens, 8 calls at a time, never failing.
type Config struct {
	// Name is the model name reported in replies. Default "sim".
	Name string
	// TTFT is the delay before the first token. Default 0.
	TTFT time.Duration
	// TokensPerSecond is the generation speed after the first token; 0
	// means instant.
	TokensPerSecond float64
	// Parallel is the number of slots; further calls wait for one. Default 8.
	Parallel int
	// ErrorRate is the share of calls, 0 to 1, that fail with a
	// provider_error (HTTP 500 as a provider would send).
	ErrorRate float64
	// Tokens is the reply length when the job sets no max_tokens. Default 16.
	Tokens int
}

// Provider is a simulated deployment. It implements provider.Provider,
// provider.Streamer and provider.Embedder.
type Provider struct {
	cfg   Config
	slots chan struct{}
	seq   atomic.Uint64
	calls atomic.Uint64 // tool calls made, for their ids
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Streamer = (*Provider)(nil)
	_ provider.Embedder = (*Provider)(nil)
)

// New returns a simulator.
func New(cfg Config) (*Provider, error) {
	if cfg.Name == "" {
		cfg.Name = "sim"
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Tokens <= 0 {
		cfg.Tokens = 16
	}
	if cfg.ErrorRate < 0 || cfg.ErrorRate > 1 {
		return nil, fmt.Errorf("sim: error_rate %g is not between 0 and 1", cfg.ErrorRate)
	}
	if cfg.TokensPerSecond < 0 {
		return nil, fmt.Errorf("sim: tokens_per_second %g is negative", cfg.TokensPerSecond)
	}
	return &Provider{cfg: cfg, slots: make(chan struct{}, cfg.Parallel)}, nil
}

// Parallel returns the number of slots.
func (p *Provider) Parallel() int { return p.cfg.Parallel }

// Complete simulates a call.
func (p *Provider) Complete(ctx context.Context, req *schema.Request) (*schema.Response, error) {
	return p.Stream(ctx, req, nil)
}

// Stream simulates a streamed call, emitting one word per token.
func (p *Provider) Stream(ctx context.Context, req *schema.Request, emit provider.Emit) (*schema.Response, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, provider.TransportError(ctx, ctx.Err())
	}
	defer func() { <-p.slots }()

	n := p.cfg.Tokens
	finish := schema.FinishStop
	if lim := req.Limit(); lim > 0 && lim < n {
		n, finish = lim, schema.FinishLength
	} else if lim > n {
		n = lim
		if n > 4096 {
			n = 4096
		}
	}
	if err := p.failMaybe(ctx); err != nil {
		return nil, err
	}
	if t := toolToCall(req); t != nil {
		return p.callTool(req, t, emit)
	}
	words := seedWords(req)
	if r := toolResult(req); r != "" {
		// The answer after a tool call quotes its result, once.
		words = strings.Fields(r)
		n = min(n, len(words))
		if n == len(words) {
			finish = schema.FinishStop
		}
	}
	if content, ok := structured(req, words); ok {
		return p.answer(req, content, emit)
	}
	var perToken time.Duration
	if p.cfg.TokensPerSecond > 0 {
		perToken = time.Duration(float64(time.Second) / p.cfg.TokensPerSecond)
	}
	var b strings.Builder
	start := time.Now()
	for i := 0; i < n; i++ {
		w := words[i%len(words)]
		if i > 0 {
			w = " " + w
		}
		b.WriteString(w)
		if emit != nil {
			if err := emit(provider.Text(w)); err != nil {
				return nil, err
			}
		}
		if perToken > 0 {
			// Sleep to the token's due time, not per token, so the rate holds.
			if err := wait(ctx, time.Until(start.Add(time.Duration(i+1)*perToken))); err != nil {
				return nil, err
			}
		}
	}
	return p.reply(req, schema.Message{Role: schema.RoleAssistant, Content: schema.Content(b.String())}, finish, n), nil
}

// reply is the response of a call that produced message msg of n tokens.
func (p *Provider) reply(req *schema.Request, msg schema.Message, finish string, n int) *schema.Response {
	prompt := promptWords(req)
	return &schema.Response{
		ID:      "chatcmpl-sim-" + strconv.FormatUint(p.seq.Add(1), 10),
		Model:   p.cfg.Name,
		Choices: []schema.Choice{{Message: msg, FinishReason: finish}},
		Usage:   schema.Usage{PromptTokens: prompt, CompletionTokens: n, TotalTokens: prompt + n},
	}
}

// promptWords counts the words of the prompt: its tokens, to the
// simulator.
func promptWords(req *schema.Request) int {
	n := 0
	for i := range req.Messages {
		n += len(strings.Fields(req.Messages[i].Text()))
	}
	return n
}

// callTool answers with a call of tool t (see tools.go). Streamed, the
// call comes in OpenAI's pieces: id and name first, then the arguments in
// two fragments.
func (p *Provider) callTool(req *schema.Request, t *schema.Tool, emit provider.Emit) (*schema.Response, error) {
	args := exampleJSON(t.Function.Parameters, lastWord(req))
	id := callID(p.calls.Add(1))
	if emit != nil {
		half := len(args) / 2
		for _, piece := range []schema.ToolCallDelta{
			{ID: id, Type: schema.ToolTypeFunction, Function: schema.FunctionCallDelta{Name: t.Function.Name}},
			{Function: schema.FunctionCallDelta{Arguments: args[:half]}},
			{Function: schema.FunctionCallDelta{Arguments: args[half:]}},
		} {
			if err := emit(schema.ChunkChoice{Delta: schema.Delta{ToolCalls: []schema.ToolCallDelta{piece}}}); err != nil {
				return nil, err
			}
		}
	}
	msg := schema.Message{Role: schema.RoleAssistant, ToolCalls: []schema.ToolCall{{ID: id, Type: schema.ToolTypeFunction,
		Function: schema.FunctionCall{Name: t.Function.Name, Arguments: args}}}}
	return p.reply(req, msg, schema.FinishToolCalls, (len(args)+3)/4), nil
}

// answer replies content whole (structured output), emitted in one piece.
func (p *Provider) answer(req *schema.Request, content string, emit provider.Emit) (*schema.Response, error) {
	if emit != nil {
		if err := emit(provider.Text(content)); err != nil {
			return nil, err
		}
	}
	msg := schema.Message{Role: schema.RoleAssistant, Content: schema.Content(content)}
	return p.reply(req, msg, schema.FinishStop, (len(content)+3)/4), nil
}

// failMaybe waits TTFT, then fails at ErrorRate with a provider_error.
func (p *Provider) failMaybe(ctx context.Context) error {
	if err := wait(ctx, p.cfg.TTFT); err != nil {
		return err
	}
	if p.cfg.ErrorRate > 0 && rand.Float64() < p.cfg.ErrorRate {
		e := schema.NewError(schema.CodeProviderError, "sim: HTTP 500: simulated failure")
		e.ProviderStatus = 500
		return e
	}
	return nil
}

// seedWords are the words a reply cycles through: the last user message's,
// so a test can see its prompt came through.
func seedWords(req *schema.Request) []string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == schema.RoleUser {
			if w := strings.Fields(req.Messages[i].Text()); len(w) > 0 {
				return w
			}
		}
	}
	return []string{"sim"}
}

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		if err := ctx.Err(); err != nil {
			return provider.TransportError(ctx, err)
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return provider.TransportError(ctx, ctx.Err())
	}
}
