package anthropictest

import (
	"encoding/json"
	"regexp"
)

// Tool is a tool declaration. Custom tools (no type, or "custom") have a
// name and an input_schema; server tools (web_search_…, bash_…) a type.
type Tool struct {
	Type         string          `json:"type"`
	Name         string          `json:"name"`
	Description  *string         `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl json.RawMessage `json:"cache_control"`
	// Server tools' own settings.
	MaxUses json.RawMessage `json:"max_uses"`
}

// ToolChoice is the request's tool_choice.
type ToolChoice struct {
	Type                   string  `json:"type"`
	Name                   *string `json:"name"`
	DisableParallelToolUse *bool   `json:"disable_parallel_tool_use"`
}

// Thinking is the request's thinking setting.
type Thinking struct {
	Type         string `json:"type"`
	BudgetTokens *int   `json:"budget_tokens"`
}

// Enabled reports whether thinking is on.
func (t *Thinking) Enabled() bool { return t != nil && t.Type == "enabled" }

var toolNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

func (t *Tool) custom() bool { return t.Type == "" || t.Type == "custom" }

// validateTools checks the declarations as the API does.
func validateTools(tools []Tool) *Failure {
	names := map[string]bool{}
	for i := range tools {
		t := &tools[i]
		if !t.custom() {
			continue // a server tool: its own rules
		}
		switch {
		case t.Name == "":
			return invalid("tools.%d.custom.name: Field required", i)
		case !toolNamePattern.MatchString(t.Name):
			return invalid("tools.%d.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'", i)
		case len(t.InputSchema) == 0:
			return invalid("tools.%d.custom.input_schema: Field required", i)
		case !isObject(t.InputSchema):
			return invalid("tools.%d.custom.input_schema: Input should be a valid dictionary", i)
		}
		var head struct {
			Type json.RawMessage `json:"type"`
		}
		_ = json.Unmarshal(t.InputSchema, &head)
		switch string(head.Type) {
		case `"object"`:
		case "":
			return invalid("tools.%d.custom.input_schema.type: Field required", i)
		default:
			return invalid("tools.%d.custom.input_schema.type: Input should be 'object'", i)
		}
		if names[t.Name] {
			return invalid("tools: Tool names must be unique.")
		}
		names[t.Name] = true
	}
	return nil
}

// validateToolChoice checks tool_choice against the tools declared.
func validateToolChoice(c *ToolChoice, tools []Tool) *Failure {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "auto", "any", "tool":
	case "none":
		if c.DisableParallelToolUse != nil {
			return invalid("tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted")
		}
	case "":
		return invalid("tool_choice.type: Field required")
	default:
		return invalid("tool_choice: Input tag '%s' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'", c.Type)
	}
	if c.Type != "tool" && c.Name != nil {
		return invalid("tool_choice.%s.name: Extra inputs are not permitted", c.Type)
	}
	if len(tools) == 0 {
		return invalid("tool_choice: tool_choice may only be specified while providing tools.")
	}
	if c.Type == "tool" {
		if c.Name == nil {
			return invalid("tool_choice.tool.name: Field required")
		}
		found := false
		for _, t := range tools {
			found = found || t.Name == *c.Name
		}
		if !found {
			return invalid("tool_choice.tool.name: Tool '%s' not found in provided tools", *c.Name)
		}
	}
	return nil
}

// thinkingDocs is where the API's thinking errors point.
const thinkingDocs = "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"

// validateThinking checks thinking and what it rules out: a budget of at
// least 1024 below max_tokens, temperature other than 1, top_p under
// 0.95, top_k, and tool_choice forcing tool use.
func validateThinking(r *Request) *Failure {
	t := r.Thinking
	if t == nil {
		return nil
	}
	switch t.Type {
	case "disabled":
		if t.BudgetTokens != nil {
			return invalid("thinking.disabled.budget_tokens: Extra inputs are not permitted")
		}
		return nil
	case "enabled":
	case "":
		return invalid("thinking.type: Field required")
	default:
		return invalid("thinking: Input tag '%s' found using 'type' does not match any of the expected tags: 'enabled', 'disabled'", t.Type)
	}
	switch {
	case t.BudgetTokens == nil:
		return invalid("thinking.enabled.budget_tokens: Field required")
	case *t.BudgetTokens < 1024:
		return invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
	case *r.MaxTokens <= *t.BudgetTokens:
		return invalid("`max_tokens` must be greater than `thinking.budget_tokens`. %s", thinkingDocs)
	case r.Temperature != nil && *r.Temperature != 1:
		return invalid("`temperature` may only be set to 1 when thinking is enabled. %s", thinkingDocs)
	case r.TopP != nil && *r.TopP < 0.95:
		return invalid("`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. %s", thinkingDocs)
	case r.TopK != nil:
		return invalid("`top_k` must be unset when thinking is enabled. %s", thinkingDocs)
	case r.ToolChoice != nil && (r.ToolChoice.Type == "any" || r.ToolChoice.Type == "tool"):
		return invalid("Thinking may not be enabled when tool_choice forces tool use.")
	}
	return validateThinkingTurn(r.Messages)
}

// validateThinkingTurn checks that a tool-use turn being continued with
// thinking on starts with the thinking block it was answered with.
func validateThinkingTurn(ms []Message) *Failure {
	ts := turns(ms)
	n := len(ts)
	if n < 2 || ts[n-1].role != "user" || ts[n-2].role != "assistant" {
		return nil
	}
	results := false
	for _, b := range ts[n-1].blocks {
		results = results || b.Type == "tool_result"
	}
	a := ts[n-2]
	if !results || len(a.blocks) == 0 {
		return nil
	}
	if first := a.blocks[0].Type; first != "thinking" && first != "redacted_thinking" {
		return invalid("messages.%d.content.0.type: Expected `thinking` or `redacted_thinking`, but found `%s`. "+
			"When `thinking` is enabled, a final `assistant` message must start with a thinking block "+
			"(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking "+
			"blocks from previous turns. To avoid this requirement, disable `thinking`. %s", a.first, first, thinkingDocs)
	}
	return nil
}
