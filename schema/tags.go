package schema

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// Headers of tag routing and pre-call checks (docs/protocol.md §5, §11).
const (
	// HeaderTags, set by a producer, lists the job's tags, comma-separated
	// ("free,team-a"): with router_settings.enable_tag_filtering the job
	// goes only to deployments with one of them (LiteLLM's tag routing;
	// its proxy reads the same list from the x-litellm-tags header). When
	// present it is the job's tags and the body is not read for them.
	HeaderTags = "Llmq-Tags"
	// HeaderPromptTokens is a worker's estimate of the job's prompt
	// tokens, sent with a pre-call context_window_exceeded bounce: the
	// dispatcher then skips deployments whose window is smaller.
	HeaderPromptTokens = "Llmq-Prompt-Tokens"
)

// Bounds of a job's tags: more, or longer ones, are dropped (ParseTags).
// Heartbeats carry the same bounds (broker.MaxBeatTags).
const (
	MaxTags   = 32
	MaxTagLen = 64
)

// ParseTags reads a comma-separated tag list: spaces around each tag are
// trimmed, empty and duplicate tags dropped, and at most MaxTags of at
// most MaxTagLen bytes kept (others are skipped).
func ParseTags(s string) []string {
	var out []string
	for s != "" && len(out) < MaxTags {
		var tag string
		tag, s, _ = strings.Cut(s, ",")
		out = AddTag(out, tag)
	}
	return out
}

// AddTag appends tag to tags, trimmed, unless it is empty, too long, a
// duplicate or one past MaxTags.
func AddTag(tags []string, tag string) []string {
	tag = strings.TrimSpace(tag)
	if tag == "" || len(tag) > MaxTagLen || len(tags) >= MaxTags {
		return tags
	}
	for _, t := range tags {
		if t == tag {
			return tags
		}
	}
	return append(tags, tag)
}

// Metadata is a job's metadata: string values, kept by llmq and not sent
// to providers. A value may also be an array of strings, as LiteLLM's
// metadata.tags is; it is kept joined with commas.
type Metadata map[string]string

// UnmarshalJSON accepts an object whose values are strings, null, or
// arrays of strings.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("metadata: want an object")
	}
	if raw == nil {
		*m = nil
		return nil
	}
	out := make(Metadata, len(raw))
	for k, v := range raw {
		s, err := jsonStringOrList(v)
		if err != nil {
			return fmt.Errorf("metadata.%s: %v", k, err)
		}
		out[k] = s
	}
	*m = out
	return nil
}

func jsonStringOrList(v json.RawMessage) (string, error) {
	switch {
	case string(v) == "null":
		return "", nil
	case len(v) > 0 && v[0] == '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case len(v) > 0 && v[0] == '[':
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return "", fmt.Errorf("want a string or an array of strings")
		}
		return strings.Join(list, ","), nil
	}
	return "", fmt.Errorf("want a string or an array of strings")
}

// DecodeMsgpack accepts a map whose values are strings, nil, or arrays of
// strings.
func (m *Metadata) DecodeMsgpack(d *msgpack.Decoder) error {
	v, err := d.DecodeInterface()
	if err != nil {
		return err
	}
	if v == nil {
		*m = nil
		return nil
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("metadata: want a map")
	}
	out := make(Metadata, len(raw))
	for k, v := range raw {
		s, err := stringOrList(v)
		if err != nil {
			return fmt.Errorf("metadata.%s: %v", k, err)
		}
		out[k] = s
	}
	*m = out
	return nil
}

// stringOrList reads a decoded msgpack value that should be a string, nil
// or an array of strings (joined with commas).
func stringOrList(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("want a string or an array of strings")
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("want a string or an array of strings")
}

// TagList is a job's top-level tags (LiteLLM's proxy accepts "tags" in
// the request body): an array of strings, or one comma-separated string.
type TagList []string

// UnmarshalJSON accepts a string, null or an array of strings.
func (t *TagList) UnmarshalJSON(b []byte) error {
	s, err := jsonStringOrList(b)
	if err != nil {
		return fmt.Errorf("tags: %v", err)
	}
	*t = ParseTags(s)
	return nil
}

// DecodeMsgpack accepts a string, nil or an array of strings.
func (t *TagList) DecodeMsgpack(d *msgpack.Decoder) error {
	v, err := d.DecodeInterface()
	if err != nil {
		return err
	}
	s, err := stringOrList(v)
	if err != nil {
		return fmt.Errorf("tags: %v", err)
	}
	*t = ParseTags(s)
	return nil
}

// JobTags returns the tags a request names: its top-level tags, else
// metadata.tags (LiteLLM's two places), parsed as ParseTags does.
func (r *Request) JobTags() []string {
	if len(r.Tags) > 0 {
		return ParseTags(strings.Join(r.Tags, ","))
	}
	return ParseTags(r.Metadata["tags"])
}
