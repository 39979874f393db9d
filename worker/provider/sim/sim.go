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

// Provider is a simulated deployment. It implements provider.Provider and
// provider.Streamer.
type Provider struct {
	cfg   Config
	slots chan struct{}
	seq   atomic.Uint64
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Streamer = (*Provider)(nil)
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
	if p.cfg.ErrorRate > 0 && rand.Float64() < p.cfg.ErrorRate {
		if err := wait(ctx, p.cfg.TTFT); err != nil {
			return nil, err
		}
		e := schema.NewError(schema.CodeProviderError, "sim: HTTP 500: simulated failure")
		e.ProviderStatus = 500
		return nil, e
	}
	if err := wait(ctx, p.cfg.TTFT); err != nil {
		return nil, err
	}
	words := seedWords(req)
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
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(strings.Fields(string(m.Content)))
	}
	return &schema.Response{
		ID:    "chatcmpl-sim-" + strconv.FormatUint(p.seq.Add(1), 10),
		Model: p.cfg.Name,
		Choices: []schema.Choice{{
			Message:      schema.Message{Role: schema.RoleAssistant, Content: schema.Content(b.String())},
			FinishReason: finish,
		}},
		Usage: schema.Usage{PromptTokens: prompt, CompletionTokens: n, TotalTokens: prompt + n},
	}, nil
}

// seedWords are the words a reply cycles through: the last user message's,
// so a test can see its prompt came through.
func seedWords(req *schema.Request) []string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == schema.RoleUser {
			if w := strings.Fields(string(req.Messages[i].Content)); len(w) > 0 {
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
