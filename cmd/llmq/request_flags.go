package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmq/llmq/schema"
)

// maxFlagFileBytes bounds a file given to --tools or --json-schema.
const maxFlagFileBytes = 4 << 20

// readFlagFile reads a small file named by flag.
func readFlagFile(flag, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFlagFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if len(b) > maxFlagFileBytes {
		return nil, fmt.Errorf("%s: %s is over %d bytes", flag, path, maxFlagFileBytes)
	}
	return b, nil
}

// loadTools reads --tools: a JSON array of OpenAI tools
// ([{"type":"function","function":{"name":…,"parameters":{…}}}]).
func loadTools(path string) ([]schema.Tool, error) {
	b, err := readFlagFile("--tools", path)
	if err != nil {
		return nil, err
	}
	var tools []schema.Tool
	if err := json.Unmarshal(b, &tools); err != nil {
		return nil, fmt.Errorf("--tools %s: want a JSON array of OpenAI tools ([{\"type\":\"function\",\"function\":{\"name\":…}}]): %w", path, err)
	}
	return tools, nil
}

// parseToolChoice reads --tool-choice: none, auto, required, or the name
// of the function to force.
func parseToolChoice(s string) *schema.ToolChoice {
	switch s {
	case "":
		return nil
	case schema.ToolChoiceNone, schema.ToolChoiceAuto, schema.ToolChoiceRequired:
		return &schema.ToolChoice{Mode: s}
	}
	return &schema.ToolChoice{Mode: schema.ToolChoiceFunction, Function: s}
}

// loadJSONSchema reads --json-schema: a JSON Schema, or OpenAI's
// json_schema object ({"name":…,"schema":{…},"strict":…}). A bare schema
// is named after the file.
func loadJSONSchema(path string) (*schema.ResponseFormat, error) {
	b, err := readFlagFile("--json-schema", path)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("--json-schema %s: want a JSON Schema object: %w", path, err)
	}
	js := &schema.JSONSchema{}
	if probe.Name != "" && len(probe.Schema) > 0 && probe.Schema[0] == '{' {
		if err := json.Unmarshal(b, js); err != nil {
			return nil, fmt.Errorf("--json-schema %s: %w", path, err)
		}
	} else {
		js.Name = schemaName(path)
		js.Schema = schema.RawJSON(b)
	}
	return &schema.ResponseFormat{Type: schema.FormatJSONSchema, JSONSchema: js}, nil
}

// schemaName makes a json_schema name (letters, digits, _ and -) of a
// file's base name.
func schemaName(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	out := []byte{}
	for i := 0; i < len(base) && len(out) < 64; i++ {
		c := base[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "response"
	}
	return string(out)
}

// imagePart reads --image: an http(s) URL or data: URI as is, else a file
// sent as a data: URI of its type.
func imagePart(arg string, maxBytes int64) (schema.ContentPart, error) {
	if strings.HasPrefix(arg, "https://") || strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "data:") {
		return schema.ContentPart{Type: schema.PartImageURL, ImageURL: &schema.ImageURL{URL: arg}}, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return schema.ContentPart{}, fmt.Errorf("--image: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return schema.ContentPart{}, fmt.Errorf("--image: %w", err)
	}
	if int64(len(b)) > maxBytes {
		return schema.ContentPart{}, fmt.Errorf("--image: %s is over %d bytes", arg, maxBytes)
	}
	typ := mime.TypeByExtension(strings.ToLower(filepath.Ext(arg)))
	if !strings.HasPrefix(typ, "image/") {
		typ = http.DetectContentType(b)
	}
	if i := strings.IndexByte(typ, ';'); i >= 0 {
		typ = typ[:i]
	}
	if !strings.HasPrefix(typ, "image/") {
		return schema.ContentPart{}, fmt.Errorf("--image: %s is %s, not an image", arg, typ)
	}
	uri := "data:" + typ + ";base64," + base64.StdEncoding.EncodeToString(b)
	return schema.ContentPart{Type: schema.PartImageURL, ImageURL: &schema.ImageURL{URL: uri}}, nil
}

// printToolCalls prints a reply's tool calls, one a line:
// "tool call <id>: <name>(<arguments>)".
func printToolCalls(out io.Writer, calls []schema.ToolCall) {
	for _, c := range calls {
		fmt.Fprintf(out, "tool call %s: %s(%s)\n", c.ID, c.Function.Name, c.Function.Arguments)
	}
}
