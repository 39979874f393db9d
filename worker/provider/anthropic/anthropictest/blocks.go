package anthropictest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// Block is a content block of a message: text, image, tool_use,
// tool_result, or another type the API knows.
type Block struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
	// Source is an image's source.
	Source *Source `json:"source"`
	// ID, Name and Input are a tool_use block's.
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
	// ToolUseID, Content and IsError are a tool_result block's; Content
	// is a string or an array of text and image blocks.
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   *bool           `json:"is_error"`
}

// Source is an image block's source: base64 data with its media type, or
// a URL the API fetches.
type Source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

// ResultText returns a tool_result's content as text: the string, or its
// text blocks joined.
func (b *Block) ResultText() string {
	if len(b.Content) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(b.Content, &s) == nil {
		return s
	}
	var t Text
	_ = t.UnmarshalJSON(b.Content)
	return t.Value
}

// mediaTypes are the image media types the API takes.
var mediaTypes = [...]string{"image/jpeg", "image/png", "image/gif", "image/webp"}

var toolIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// blockTypes returns the block types a role's messages may hold.
func blockTypes(role string) []string {
	if role == "user" {
		return []string{"text", "image", "document", "tool_result", "search_result"}
	}
	return []string{"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result"}
}

// validateBlock checks block j of message i, whose role is role.
func validateBlock(i, j int, role string, b *Block) *Failure {
	allowed := false
	for _, t := range blockTypes(role) {
		allowed = allowed || b.Type == t
	}
	if !allowed {
		return invalid("messages.%d.content.%d: Input tag '%s' found using 'type' does not match any of the expected tags for %s messages: '%s'",
			i, j, b.Type, role, strings.Join(blockTypes(role), "', '"))
	}
	switch b.Type {
	case "image":
		return validateImage(i, j, b.Source)
	case "tool_use":
		switch {
		case !toolIDPattern.MatchString(b.ID):
			return invalid("messages.%d.content.%d.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'", i, j)
		case b.Name == "":
			return invalid("messages.%d.content.%d.tool_use.name: Field required", i, j)
		case len(b.Input) == 0:
			return invalid("messages.%d.content.%d.tool_use.input: Field required", i, j)
		case !isObject(b.Input):
			return invalid("messages.%d.content.%d.tool_use.input: Input should be a valid dictionary", i, j)
		}
	case "tool_result":
		if b.ToolUseID == "" {
			return invalid("messages.%d.content.%d.tool_result.tool_use_id: Field required", i, j)
		}
		if len(b.Content) > 0 && b.Content[0] != '"' {
			var t Text
			if err := t.UnmarshalJSON(b.Content); err != nil {
				return invalid("messages.%d.content.%d.tool_result.content: %v", i, j, err)
			}
			for k := range t.Items {
				if it := &t.Items[k]; it.Type != "text" && it.Type != "image" {
					return invalid("messages.%d.content.%d.tool_result.content.%d: Input tag '%s' found using 'type' does not match any of the expected tags: 'text', 'image'", i, j, k, it.Type)
				}
			}
			if t.EmptyBlock {
				return invalid("messages: text content blocks must be non-empty")
			}
		}
	}
	return nil
}

// validateImage checks an image block's source the way the API does,
// down to the bytes matching the media type.
func validateImage(i, j int, src *Source) *Failure {
	if src == nil {
		return invalid("messages.%d.content.%d.image.source: Field required", i, j)
	}
	switch src.Type {
	case "base64":
		known := false
		for _, t := range mediaTypes {
			known = known || src.MediaType == t
		}
		if !known {
			return invalid("messages.%d.content.%d.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'", i, j)
		}
		data, err := base64.StdEncoding.DecodeString(src.Data)
		if err != nil || len(data) == 0 {
			return invalid("messages.%d.content.%d.image.source.base64.data: Invalid base64 data", i, j)
		}
		if got := http.DetectContentType(data); strings.HasPrefix(got, "image/") && got != src.MediaType {
			return invalid("messages.%d.content.%d.image.source.base64: The image was specified using the %s media type, but the image appears to be a %s image", i, j, src.MediaType, got)
		}
	case "url":
		if !strings.HasPrefix(src.URL, "https://") && !strings.HasPrefix(src.URL, "http://") {
			return invalid("messages.%d.content.%d.image.source.url.url: Input should be a valid URL", i, j)
		}
	case "":
		return invalid("messages.%d.content.%d.image.source.type: Field required", i, j)
	default:
		return invalid("messages.%d.content.%d.image.source: Input tag '%s' found using 'type' does not match any of the expected tags: 'base64', 'file', 'url'", i, j, src.Type)
	}
	return nil
}

func isObject(raw []byte) bool {
	b := bytes.TrimSpace(raw)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// turn is one conversation turn after the API merges consecutive
// messages of a role: its role, its blocks, and the index of its first
// message (for errors).
type turn struct {
	role   string
	first  int
	blocks []Block
}

// turns merges consecutive messages of one role, as the API does.
func turns(ms []Message) []turn {
	var out []turn
	for i, m := range ms {
		bs := m.Content.Items
		if !m.Content.Array {
			v := m.Content.Value
			bs = []Block{{Type: "text", Text: &v}}
		}
		if n := len(out); n > 0 && out[n-1].role == m.Role {
			out[n-1].blocks = append(out[n-1].blocks, bs...)
			continue
		}
		out = append(out, turn{role: m.Role, first: i, blocks: append([]Block(nil), bs...)})
	}
	return out
}

// validateToolTurns checks what the API checks of tool use across turns:
// tool_use ids are unique, every tool_use of an assistant turn has its
// tool_result in the next turn when the conversation goes on, and every
// tool_result answers a tool_use of the turn before.
func validateToolTurns(ms []Message) *Failure {
	ts := turns(ms)
	seen := map[string]bool{}
	for k, t := range ts {
		if t.role != "assistant" {
			continue
		}
		var ids []string
		for _, b := range t.blocks {
			if b.Type != "tool_use" {
				continue
			}
			if seen[b.ID] {
				return invalid("messages.%d: `tool_use` ids must be unique, found duplicate: %s", t.first, b.ID)
			}
			seen[b.ID] = true
			ids = append(ids, b.ID)
		}
		if len(ids) == 0 || k == len(ts)-1 {
			continue
		}
		answered := map[string]bool{}
		for _, b := range ts[k+1].blocks {
			if b.Type == "tool_result" {
				answered[b.ToolUseID] = true
			}
		}
		var missing []string
		for _, id := range ids {
			if !answered[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return invalid("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. "+
				"Each `tool_use` block must have a corresponding `tool_result` block in the next message.", t.first+1, strings.Join(missing, ", "))
		}
	}
	for k, t := range ts {
		if t.role != "user" {
			continue
		}
		prev := map[string]bool{}
		if k > 0 {
			for _, b := range ts[k-1].blocks {
				if b.Type == "tool_use" {
					prev[b.ID] = true
				}
			}
		}
		for j, b := range t.blocks {
			if b.Type == "tool_result" && !prev[b.ToolUseID] {
				return invalid("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. "+
					"Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", t.first, j, b.ToolUseID)
			}
		}
	}
	return nil
}
