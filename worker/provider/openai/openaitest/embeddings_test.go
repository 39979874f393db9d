package openaitest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/llmq/llmq/worker/provider/openai/openaitest"
)

func TestFakeEmbeddingsRejectWhatOpenAIRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, auth, body string
		status           int
		param, inMessage string
	}{
		{"no key", "", `{"model":"m","input":"x"}`, 401, "", "API key"},
		{"no model", "Bearer " + key, `{"input":"x"}`, 400, "", "model"},
		{"no input", "Bearer " + key, `{"model":"m"}`, 400, "input", "Missing required parameter"},
		{"empty string", "Bearer " + key, `{"model":"m","input":""}`, 400, "input", "is invalid"},
		{"empty array", "Bearer " + key, `{"model":"m","input":[]}`, 400, "input", "is invalid"},
		{"number in strings", "Bearer " + key, `{"model":"m","input":["a",1]}`, 400, "input", "is invalid"},
		{"object input", "Bearer " + key, `{"model":"m","input":{"text":"a"}}`, 400, "input", "is invalid"},
		{"dimensions zero", "Bearer " + key, `{"model":"m","input":"x","dimensions":0}`, 400, "dimensions", ""},
		{"dimensions above the model's", "Bearer " + key, `{"model":"m","input":"x","dimensions":65}`, 400, "dimensions", "64"},
		{"unknown encoding", "Bearer " + key, `{"model":"m","input":"x","encoding_format":"int8"}`, 400, "encoding_format", "'int8'"},
		{"unknown argument", "Bearer " + key, `{"model":"m","input":"x","truncate":true}`, 400, "", "Unrecognized request argument supplied: truncate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t, openaitest.Config{Key: key})
			status, _, b := post(t, srv, "POST", "/v1/embeddings", "application/json", c.auth, c.body)
			if status != c.status {
				t.Fatalf("status = %d, want %d: %s", status, c.status, b)
			}
			var e errorBody
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" {
				t.Fatalf("body %s is not an OpenAI error: %v", b, err)
			}
			if c.param != "" && deref(e.Error.Param) != c.param {
				t.Errorf("param = %q, want %q", deref(e.Error.Param), c.param)
			}
			if !strings.Contains(e.Error.Message, c.inMessage) {
				t.Errorf("message %q lacks %q", e.Error.Message, c.inMessage)
			}
		})
	}
}

func TestFakeEmbeddingsAcceptEveryInputShape(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.Config{})
	inputs := map[string]int{`"one"`: 1, `["a","b"]`: 2, `[1,2,3]`: 1, `[[1,2],[3]]`: 2}
	for in, n := range inputs {
		status, _, b := post(t, srv, "POST", "/v1/embeddings", "application/json", "", `{"model":"m","input":`+in+`,"encoding_format":"base64","dimensions":4}`)
		var r struct {
			Data []struct {
				Index     int    `json:"index"`
				Embedding string `json:"embedding"`
			} `json:"data"`
			Usage struct {
				Prompt int `json:"prompt_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(b, &r); status != http.StatusOK || err != nil || len(r.Data) != n || len(r.Data[0].Embedding) != 24 || r.Usage.Prompt == 0 {
			t.Errorf("input %s: status %d, %s (%v)", in, status, b, err)
		}
	}
}
