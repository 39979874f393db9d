package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/llmq/llmq/broker"
	"github.com/llmq/llmq/schema"
)

// Job is one request of a batch.
type Job struct {
	// CustomID identifies the job in its batch (OpenAI's custom_id):
	// non-empty, at most MaxCustomIDLen bytes, unique in the batch.
	CustomID string
	// Tier runs the job (OpenAI's body.model).
	Tier string
	// Request is the body: a chat completion, or an embedding job
	// (Request.IsEmbedding: a line of url /v1/embeddings). Stream is
	// ignored.
	Request *schema.Request
}

func (j *Job) validate() error {
	switch {
	case j.CustomID == "":
		return errors.New("custom_id: required")
	case len(j.CustomID) > MaxCustomIDLen:
		return fmt.Errorf("custom_id: %d bytes, at most %d", len(j.CustomID), MaxCustomIDLen)
	case j.Tier == "":
		return errors.New("body.model: required (it names the tier)")
	case !broker.ValidTier(j.Tier):
		return fmt.Errorf("body.model: %q is not a valid tier name", j.Tier)
	case j.Request == nil:
		return errors.New("body: required")
	}
	if err := j.Request.Validate(); err != nil {
		var e *schema.Error
		if errors.As(err, &e) {
			return fmt.Errorf("body.%s", e.Message)
		}
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

// inputLine is a line of an OpenAI batch input file.
type inputLine struct {
	CustomID string          `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// The urls a batch input line may name: chat completions (the default
// when a line names none) and embeddings.
const (
	ChatCompletionsURL = "/v1/chat/completions"
	EmbeddingsURL      = "/v1/embeddings"
)

// ParseLine reads one line of an OpenAI batch input file:
//
//	{"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions",
//	 "body": {"model": "tier1", "messages": [{"role": "user", "content": "hi"}]}}
//	{"custom_id": "emb-1", "method": "POST", "url": "/v1/embeddings",
//	 "body": {"model": "embed", "input": ["a text", "another"]}}
//
// body.model names the tier. A body carries every field of its endpoint
// (tools, response_format, images, ...; input, dimensions,
// encoding_format). The error says what is wrong with the line.
func ParseLine(line []byte) (Job, error) {
	var in inputLine
	d := json.NewDecoder(bytes.NewReader(line))
	if err := d.Decode(&in); err != nil {
		return Job{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if d.More() {
		return Job{}, errors.New("trailing data after the JSON object")
	}
	if in.Method != "" && in.Method != "POST" {
		return Job{}, fmt.Errorf("method: %q, want POST", in.Method)
	}
	if in.URL != "" && in.URL != ChatCompletionsURL && in.URL != EmbeddingsURL {
		return Job{}, fmt.Errorf("url: %q, want %s or %s", in.URL, ChatCompletionsURL, EmbeddingsURL)
	}
	if len(bytes.TrimSpace(in.Body)) == 0 || string(bytes.TrimSpace(in.Body)) == "null" {
		return Job{CustomID: in.CustomID}, errors.New("body: required")
	}
	var req schema.Request
	if err := schema.JSON.Unmarshal(in.Body, &req); err != nil {
		return Job{CustomID: in.CustomID}, fmt.Errorf("body: %v", err)
	}
	req.Stream = false
	j := Job{CustomID: in.CustomID, Tier: req.Model, Request: &req}
	switch embedding := in.URL == EmbeddingsURL; {
	case embedding && !req.IsEmbedding():
		return j, errors.New("body.input: required in a line of url " + EmbeddingsURL)
	case !embedding && req.IsEmbedding():
		return j, fmt.Errorf("body.input: an embedding job: give the line url %s", EmbeddingsURL)
	}
	if err := j.validate(); err != nil {
		return j, err
	}
	return j, nil
}

// Result is one line of an OpenAI batch output file: the answer to a job,
// or why there is none.
type Result struct {
	// ID is this result's id ("batch_req_…").
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	// Response is the reply: status 200 and a chat.completion body (an
	// embedding job's: a list of embeddings), with llmq's routing block,
	// or the error status and an {"error": …} body.
	Response *ResultResponse `json:"response"`
	// Error is set when the job got no definitive answer: it failed with
	// retryable errors max_deliver times (code "max_deliver"), or its job
	// message could not be read.
	Error *ResultError `json:"error"`
}

// ResultResponse is the HTTP-like answer of a result.
type ResultResponse struct {
	StatusCode int             `json:"status_code"`
	RequestID  string          `json:"request_id"`
	Body       json.RawMessage `json:"body"`
}

// ResultError says why a job has no answer.
type ResultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Failed reports whether the result is not a completion.
func (r *Result) Failed() bool {
	return r.Error != nil || r.Response == nil || r.Response.StatusCode != 200
}

// Completion decodes the chat.completion of a successful result.
func (r *Result) Completion() (*schema.Response, error) {
	if r.Failed() {
		return nil, r.Err()
	}
	var resp schema.Response
	if err := json.Unmarshal(r.Response.Body, &resp); err != nil {
		return nil, fmt.Errorf("batch: result %s: %w", r.CustomID, err)
	}
	return &resp, nil
}

// Embedding decodes the embeddings of a successful result of an
// embedding job.
func (r *Result) Embedding() (*schema.EmbeddingResponse, error) {
	if r.Failed() {
		return nil, r.Err()
	}
	var resp schema.EmbeddingResponse
	if err := json.Unmarshal(r.Response.Body, &resp); err != nil {
		return nil, fmt.Errorf("batch: result %s: %w", r.CustomID, err)
	}
	return &resp, nil
}

// Err returns the failure of a failed result as a *schema.Error, or nil.
func (r *Result) Err() error {
	if !r.Failed() {
		return nil
	}
	if r.Response != nil {
		var body struct {
			Error *schema.Error `json:"error"`
		}
		if json.Unmarshal(r.Response.Body, &body) == nil && body.Error != nil {
			if r.Error != nil {
				body.Error.Message = r.Error.Message
			}
			return body.Error
		}
	}
	if r.Error != nil {
		return schema.NewError(schema.CodeInternal, r.Error.Code+": "+r.Error.Message)
	}
	return schema.NewError(schema.CodeInternal, "result has no response")
}

// Meta is what llmq keeps about a batch besides its jobs and results.
type Meta struct {
	ID          string     `json:"id"`
	CreatedAt   time.Time  `json:"created_at"`
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
	// Description is free text given at the first submit (the CLI puts
	// the input file's name).
	Description string `json:"description,omitempty"`
}
