package geminitest_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/llmq/llmq/worker/provider/gemini/geminitest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const path = "/v1beta/models/gemini-2.0-flash:generateContent"

const validBody = `{"contents":[{"role":"user","parts":[{"text":"hi there"}]}]}`

type call struct {
	method, path, query, body string
	header                    map[string]string
}

type answer struct {
	status int
	ct     string
	body   string
	err    struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type   string `json:"@type"`
			Reason string `json:"reason"`
		} `json:"details"`
	}
}

// do sends c to srv with the right key and JSON content type unless c
// overrides them ("" removes a header).
func do(t *testing.T, srv *geminitest.Server, c call) answer {
	t.Helper()
	if c.method == "" {
		c.method = http.MethodPost
	}
	if c.path == "" {
		c.path = path
	}
	url := srv.URL() + c.path
	if c.query != "" {
		url += "?" + c.query
	}
	req, err := http.NewRequest(c.method, url, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-goog-api-key", srv.Key())
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, ct: resp.Header.Get("Content-Type"), body: string(b)}
	if resp.StatusCode != 200 && strings.HasPrefix(a.ct, "application/json") {
		var env struct {
			Error *json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(b, &env); err != nil || env.Error == nil {
			t.Fatalf("error body is not {\"error\":...}: %s", b)
		}
		if err := json.Unmarshal(*env.Error, &a.err); err != nil {
			t.Fatal(err)
		}
		if a.err.Code != resp.StatusCode {
			t.Errorf("error.code %d != HTTP status %d", a.err.Code, resp.StatusCode)
		}
	}
	return a
}

func TestRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		call     call
		status   int
		rpc      string
		contains string
	}{
		{"missing key", call{body: validBody, header: map[string]string{"x-goog-api-key": ""}}, 403, "PERMISSION_DENIED", "unregistered callers"},
		{"wrong key", call{body: validBody, header: map[string]string{"x-goog-api-key": "nope"}}, 400, "INVALID_ARGUMENT", "API key not valid"},
		{"key in URL", call{body: validBody, query: "key=x"}, 400, "INVALID_ARGUMENT", "x-goog-api-key"},
		{"unknown query parameter", call{body: validBody, query: "foo=1"}, 400, "INVALID_ARGUMENT", "Cannot bind query parameter"},
		{"not JSON", call{body: "{", header: nil}, 400, "INVALID_ARGUMENT", "Invalid JSON payload"},
		{"wrong content type", call{body: validBody, header: map[string]string{"Content-Type": "text/plain"}}, 400, "INVALID_ARGUMENT", "Content-Type"},
		{"unknown top-level field", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"model":"x","messages":[]}`}, 400, "INVALID_ARGUMENT", `Unknown name "messages"`},
		{"unknown nested field", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":{"max_tokens":3}}`}, 400, "INVALID_ARGUMENT", `Unknown name "max_tokens" at 'generation_config'`},
		{"wrong type", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":{"temperature":"hot"}}`}, 400, "INVALID_ARGUMENT", "generation_config.temperature"},
		{"no contents", call{body: `{}`}, 400, "INVALID_ARGUMENT", "contents is not specified"},
		{"empty contents", call{body: `{"contents":[]}`}, 400, "INVALID_ARGUMENT", "contents is not specified"},
		{"system role", call{body: `{"contents":[{"role":"system","parts":[{"text":"x"}]}]}`}, 400, "INVALID_ARGUMENT", "valid role: user, model"},
		{"assistant role", call{body: `{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}`}, 400, "INVALID_ARGUMENT", "valid role: user, model"},
		{"empty parts", call{body: `{"contents":[{"role":"user","parts":[]}]}`}, 400, "INVALID_ARGUMENT", "parts must not be empty"},
		{"empty text", call{body: `{"contents":[{"role":"user","parts":[{"text":""}]}]}`}, 400, "INVALID_ARGUMENT", "oneof field 'data'"},
		{"temperature out of range", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":{"temperature":3}}`}, 400, "INVALID_ARGUMENT", "temperature"},
		{"too many stop sequences", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":{"stopSequences":["a","b","c","d","e","f"]}}`}, 400, "INVALID_ARGUMENT", "stop"},
		{"wrong path", call{body: validBody, path: "/v1/chat/completions"}, 404, "", ""},
		{"version in path twice", call{body: validBody, path: "/v1beta/v1beta/models/gemini-2.0-flash:generateContent"}, 404, "", ""},
		{"unknown method", call{body: validBody, path: "/v1beta/models/gemini-2.0-flash:chat"}, 404, "", ""},
		{"GET", call{method: http.MethodGet, path: path}, 404, "", ""},
		{"schema field Gemini lacks", call{body: withTools(`{"name":"f","parameters":{"type":"OBJECT","properties":{"a":{"type":"STRING"}},"additionalProperties":false}}`)}, 400, "INVALID_ARGUMENT", `Unknown name "additionalProperties" at 'tools[0].function_declarations[0].parameters'`},
		{"nested schema field Gemini lacks", call{body: withTools(`{"name":"f","parameters":{"type":"OBJECT","properties":{"a":{"type":"STRING"},"b":{"type":"STRING","$ref":"#/x"}}}}`)}, 400, "INVALID_ARGUMENT", `Unknown name "$ref" at 'tools[0].function_declarations[0].parameters.properties[1].value'`},
		{"type list", call{body: withTools(`{"name":"f","parameters":{"type":"OBJECT","properties":{"a":{"type":["string","null"]}}}}`)}, 400, "INVALID_ARGUMENT", "properties[0].value.type"},
		{"unknown type", call{body: withTools(`{"name":"f","parameters":{"type":"OBJECT","properties":{"a":{"type":"text"}}}}`)}, 400, "INVALID_ARGUMENT", "google.ai.generativelanguage.v1beta.Type"},
		{"number enum", call{body: withTools(`{"name":"f","parameters":{"type":"OBJECT","properties":{"a":{"type":"INTEGER","enum":[1]}}}}`)}, 400, "INVALID_ARGUMENT", "enum"},
		{"enum without STRING type", call{body: withTools(`{"name":"f","parameters":{"type":"OBJECT","properties":{"a":{"enum":["x"]}}}}`)}, 400, "INVALID_ARGUMENT", "only allowed for STRING type"},
		{"no function name", call{body: withTools(`{"description":"d"}`)}, 400, "INVALID_ARGUMENT", "Name is required"},
		{"bad function name", call{body: withTools(`{"name":"1st"}`)}, 400, "INVALID_ARGUMENT", "Invalid function name"},
		{"duplicate function", call{body: withTools(`{"name":"f"},{"name":"f"}`)}, 400, "INVALID_ARGUMENT", "Duplicate function declaration"},
		{"empty object parameters", call{body: withTools(`{"name":"f","parameters":{"type":"OBJECT","properties":{}}}`)}, 400, "INVALID_ARGUMENT", "should be non-empty for OBJECT type"},
		{"allowed names without ANY", call{body: withToolConfig(`{"mode":"AUTO","allowedFunctionNames":["f"]}`)}, 400, "INVALID_ARGUMENT", "only be set when the Mode is ANY"},
		{"allowed name not declared", call{body: withToolConfig(`{"mode":"ANY","allowedFunctionNames":["g"]}`)}, 400, "INVALID_ARGUMENT", "not declared"},
		{"unknown mode", call{body: withToolConfig(`{"mode":"REQUIRED"}`)}, 400, "INVALID_ARGUMENT", "function_calling_config.mode"},
		{"response without call", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`}, 400, "INVALID_ARGUMENT", "function response turn comes immediately after a function call turn"},
		{"fewer responses than calls", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}},{"functionCall":{"name":"f","args":{}}}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`}, 400, "INVALID_ARGUMENT", "number of function response parts"},
		{"response named otherwise", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},{"role":"user","parts":[{"functionResponse":{"name":"g","response":{}}}]}]}`}, 400, "INVALID_ARGUMENT", "names match"},
		{"call in a user turn", call{body: `{"contents":[{"role":"user","parts":[{"functionCall":{"name":"f","args":{}}}]}]}`}, 400, "INVALID_ARGUMENT", "model turn"},
		{"call after a model turn", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"text":"a"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]}]}`}, 400, "INVALID_ARGUMENT", "function call turn comes immediately after"},
		{"args not an object", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":"x"}}]}]}`}, 400, "INVALID_ARGUMENT", "google.protobuf.Struct"},
		{"response not an object", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":"ok"}}]}]}`}, 400, "INVALID_ARGUMENT", "google.protobuf.Struct"},
		{"image type Gemini lacks", call{body: `{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/gif","data":"R0lG"}}]}]}`}, 400, "INVALID_ARGUMENT", "Unsupported MIME type: image/gif"},
		{"image without data", call{body: `{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png"}}]}]}`}, 400, "INVALID_ARGUMENT", "data is required"},
		{"image not base64", call{body: `{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"%%%"}}]}]}`}, 400, "INVALID_ARGUMENT", "Base64 decoding failed"},
		{"image with an unknown field", call{body: `{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"AA==","url":"x"}}]}]}`}, 400, "INVALID_ARGUMENT", `Unknown name "url"`},
		{"schema without JSON", call{body: withGen(`{"responseSchema":{"type":"STRING"}}`)}, 400, "INVALID_ARGUMENT", "response_mime_type must be application/json"},
		{"bad mime type", call{body: withGen(`{"responseMimeType":"text/json"}`)}, 400, "INVALID_ARGUMENT", "allowed mimetypes"},
		{"logprobs without responseLogprobs", call{body: withGen(`{"logprobs":3}`)}, 400, "INVALID_ARGUMENT", "only valid when response_logprobs is true"},
		{"too many logprobs", call{body: withGen(`{"responseLogprobs":true,"logprobs":21}`)}, 400, "INVALID_ARGUMENT", "logprobs must be in the range"},
		{"seed beyond int32", call{body: withGen(`{"seed":4294967296}`)}, 400, "INVALID_ARGUMENT", "generation_config.seed"},
		{"penalty out of range", call{body: withGen(`{"presencePenalty":2.5}`)}, 400, "INVALID_ARGUMENT", "presence_penalty"},
		{"thinking budget out of range", call{body: withGen(`{"thinkingConfig":{"thinkingBudget":99999}}`)}, 400, "INVALID_ARGUMENT", "thinking budget"},
		{"signature not base64", call{body: `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}},"thoughtSignature":"%%"}]}]}`}, 400, "INVALID_ARGUMENT", "thought_signature"},
		{"gemini 3 call without signature", call{path: "/v1beta/models/gemini-3-pro-preview:generateContent", body: `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`}, 400, "INVALID_ARGUMENT", "missing a thought_signature"},
		{"embed model mismatch", call{path: embedPath, body: `{"requests":[{"model":"models/other","content":{"parts":[{"text":"x"}]}}]}`}, 400, "INVALID_ARGUMENT", "Model names should match"},
		{"embed model without prefix", call{path: embedPath, body: `{"requests":[{"model":"m","content":{"parts":[{"text":"x"}]}}]}`}, 400, "INVALID_ARGUMENT", "models/"},
		{"embed without content", call{path: embedPath, body: `{"requests":[{"model":"models/m"}]}`}, 400, "INVALID_ARGUMENT", "content is not specified"},
		{"embed without requests", call{path: embedPath, body: `{"requests":[]}`}, 400, "INVALID_ARGUMENT", "requests is not specified"},
		{"embed over 100", call{path: embedPath, body: embedBody(101)}, 400, "INVALID_ARGUMENT", "at most 100 requests"},
		{"embed unknown field", call{path: embedPath, body: `{"requests":[{"model":"models/m","content":{"parts":[{"text":"x"}]},"input":"x"}]}`}, 400, "INVALID_ARGUMENT", `Unknown name "input"`},
		{"embed without key", call{path: embedPath, body: embedBody(1), header: map[string]string{"x-goog-api-key": ""}}, 403, "PERMISSION_DENIED", "unregistered callers"},
	}
	srv := geminitest.NewServer(t, geminitest.Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := do(t, srv, tc.call)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.rpc == "" {
				if !strings.HasPrefix(a.ct, "text/html") {
					t.Errorf("404 page content type %q, want text/html", a.ct)
				}
				return
			}
			if a.err.Status != tc.rpc || !strings.Contains(a.err.Message, tc.contains) {
				t.Errorf("error %s %q, want %s containing %q", a.err.Status, a.err.Message, tc.rpc, tc.contains)
			}
		})
	}
}

func TestWrongKeyDetails(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{})
	a := do(t, srv, call{body: validBody, header: map[string]string{"x-goog-api-key": "nope"}})
	if len(a.err.Details) == 0 || a.err.Details[0].Reason != "API_KEY_INVALID" {
		t.Errorf("details = %+v, want an ErrorInfo with reason API_KEY_INVALID", a.err.Details)
	}
}

func TestAcceptsSnakeCaseAndRecords(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Reply: "fine"})
	body := `{"contents":[{"parts":[{"text":"a b"}]}],"system_instruction":{"parts":[{"text":"sys"}]},` +
		`"generation_config":{"max_output_tokens":5,"top_p":0.5}}`
	a := do(t, srv, call{body: body})
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var resp struct {
		Candidates []struct {
			Content struct {
				Role  string `json:"role"`
				Parts []struct {
					Text string `json:"text"`
				} `json:"parts"`
			} `json:"content"`
			FinishReason string `json:"finishReason"`
		} `json:"candidates"`
		UsageMetadata struct {
			PromptTokenCount, CandidatesTokenCount, TotalTokenCount int
		} `json:"usageMetadata"`
		ModelVersion string `json:"modelVersion"`
		ResponseID   string `json:"responseId"`
	}
	if err := json.Unmarshal([]byte(a.body), &resp); err != nil {
		t.Fatal(err)
	}
	c := resp.Candidates[0]
	if c.Content.Role != "model" || c.Content.Parts[0].Text != "fine" || c.FinishReason != "STOP" {
		t.Errorf("candidate = %+v", c)
	}
	if u := resp.UsageMetadata; u.PromptTokenCount != 3 || u.CandidatesTokenCount != 1 || u.TotalTokenCount != 4 {
		t.Errorf("usage = %+v", u)
	}
	if resp.ModelVersion != "gemini-2.0-flash" || resp.ResponseID == "" {
		t.Errorf("modelVersion %q responseId %q", resp.ModelVersion, resp.ResponseID)
	}
	r := srv.Requests()[0]
	g := r.Body.GenerationConfig
	if r.Body.SystemInstruction == nil || g == nil || *g.MaxOutputTokens != 5 || *g.TopP != 0.5 {
		t.Errorf("recorded body = %+v", r.Body)
	}
}

func TestStreamFraming(t *testing.T) {
	t.Parallel()
	srv := geminitest.NewServer(t, geminitest.Config{Reply: "x y"})
	a := do(t, srv, call{body: validBody, path: "/v1beta/models/m:streamGenerateContent", query: "alt=sse"})
	if a.status != 200 || a.ct != "text/event-stream" {
		t.Fatalf("status %d type %q", a.status, a.ct)
	}
	events := 0
	sc := bufio.NewScanner(strings.NewReader(a.body))
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			events++
			if !json.Valid([]byte(data)) {
				t.Errorf("event %d is not one JSON object: %s", events, data)
			}
		}
	}
	if events != 2 || !strings.Contains(a.body, `"finishReason":"STOP"`) || !strings.HasSuffix(a.body, "\r\n\r\n") {
		t.Errorf("stream body:\n%s", a.body)
	}

	// Without alt=sse the API streams one JSON array.
	a = do(t, srv, call{body: validBody, path: "/v1beta/models/m:streamGenerateContent"})
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(a.body), &arr); err != nil || len(arr) != 2 {
		t.Errorf("array stream %q: %v", a.body, err)
	}
}

const embedPath = "/v1beta/models/m:batchEmbedContents"

func withTools(decls string) string {
	return `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"tools":[{"functionDeclarations":[` + decls + `]}]}`
}

func withToolConfig(cfg string) string {
	return `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"tools":[{"functionDeclarations":[{"name":"f"}]}],` +
		`"toolConfig":{"functionCallingConfig":` + cfg + `}}`
}

func withGen(cfg string) string {
	return `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":` + cfg + `}`
}

func embedBody(n int) string {
	reqs := make([]string, n)
	for i := range reqs {
		reqs[i] = `{"model":"models/m","content":{"parts":[{"text":"x"}]}}`
	}
	return `{"requests":[` + strings.Join(reqs, ",") + `]}`
}
