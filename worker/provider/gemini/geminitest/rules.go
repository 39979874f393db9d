package geminitest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// imageTypes are the image media types the API takes inline.
func imageTypes() []string {
	return []string{"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"}
}

// checkTools applies the API's rules to function declarations and the
// function calling configuration.
func checkTools(req *Request) *Failure {
	var names []string
	for i, t := range req.Tools {
		for j, f := range t.FunctionDeclarations {
			at := fmt.Sprintf("* GenerateContentRequest.tools[%d].function_declarations[%d]", i, j)
			switch {
			case f.Name == "":
				return InvalidArgument(at + ".name: Name is required.\n")
			case !validFunctionName(f.Name):
				return InvalidArgument(at + ".name: Invalid function name. Must start with a letter or an underscore. " +
					"Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with a maximum length of 64.\n")
			case slices.Contains(names, f.Name):
				return InvalidArgument(at + ".name: Duplicate function declaration found: " + f.Name + "\n")
			}
			names = append(names, f.Name)
			if f.Parameters != nil {
				var p struct {
					Type       string                     `json:"type"`
					Properties map[string]json.RawMessage `json:"properties"`
				}
				_ = json.Unmarshal(f.Parameters, &p)
				if strings.ToUpper(p.Type) != "OBJECT" {
					return InvalidArgument(at + ".parameters.type: must be OBJECT for function parameters.\n")
				}
				if len(p.Properties) == 0 {
					return InvalidArgument(at + ".parameters.properties: should be non-empty for OBJECT type\n")
				}
			}
		}
	}
	tc := req.ToolConfig
	if tc == nil || tc.FunctionCallingConfig == nil {
		return nil
	}
	fc := tc.FunctionCallingConfig
	const at = "* GenerateContentRequest.tool_config.function_calling_config"
	if len(fc.AllowedFunctionNames) > 0 && fc.Mode != "ANY" {
		return InvalidArgument(at + ".allowed_function_names: allowed_function_names should only be set when the Mode is ANY.\n")
	}
	for i, n := range fc.AllowedFunctionNames {
		if !slices.Contains(names, n) {
			return InvalidArgument(fmt.Sprintf("%s.allowed_function_names[%d]: function %q is not declared in tools.\n", at, i, n))
		}
	}
	if (fc.Mode == "ANY" || fc.Mode == "VALIDATED") && len(names) == 0 {
		return InvalidArgument(at + ".mode: function calling mode " + fc.Mode + " requires function declarations.\n")
	}
	return nil
}

// validFunctionName is the API's rule: a letter or underscore first, then
// letters, digits, underscores, dots, colons or dashes; at most 64.
func validFunctionName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '.' && r != ':' && r != '-' {
			return false
		}
	}
	return true
}

// checkTurns applies the API's rules to function calls and responses in
// the conversation: calls in model turns right after a user turn or a
// function response turn; responses in user turns right after a turn of
// calls, as many as there were calls, named after them; inline images of a
// supported type in valid base64.
func checkTurns(req *Request) *Failure {
	for i, c := range req.Contents {
		var calls, responses []string
		for j, p := range c.Parts {
			at := fmt.Sprintf("* GenerateContentRequest.contents[%d].parts[%d]", i, j)
			if p.ThoughtSignature != "" {
				if _, err := base64.StdEncoding.DecodeString(p.ThoughtSignature); err != nil {
					return InvalidArgument(fmt.Sprintf("Invalid value at '%s' (TYPE_BYTES), Base64 decoding failed",
						strings.TrimPrefix(at, "* GenerateContentRequest.")+".thought_signature"))
				}
			}
			if p.FunctionCall != nil {
				if p.FunctionCall.Name == "" {
					return InvalidArgument(at + ".function_call.name: Name is required.\n")
				}
				calls = append(calls, p.FunctionCall.Name)
			}
			if p.FunctionResponse != nil {
				if p.FunctionResponse.Name == "" {
					return InvalidArgument(at + ".function_response.name: Name is required.\n")
				}
				responses = append(responses, p.FunctionResponse.Name)
			}
			if b := p.InlineData; b != nil {
				if f := checkBlob(b, at); f != nil {
					return f
				}
			}
		}
		role := c.Role
		if role == "" {
			role = "user"
		}
		switch {
		case len(calls) > 0 && role != "model":
			return InvalidArgument("Please ensure that function call parts are in a model turn.")
		case len(responses) > 0 && role != "user":
			return InvalidArgument("Please ensure that function response parts are in a user turn.")
		}
		if len(calls) > 0 && i > 0 {
			prev := req.Contents[i-1]
			if prev.Role == "model" {
				return InvalidArgument("Please ensure that function call turn comes immediately after a user turn or after a function response turn.")
			}
		}
		if len(responses) > 0 {
			var prevCalls []string
			if i > 0 {
				for _, p := range req.Contents[i-1].Parts {
					if p.FunctionCall != nil {
						prevCalls = append(prevCalls, p.FunctionCall.Name)
					}
				}
			}
			if len(prevCalls) == 0 {
				return InvalidArgument("Please ensure that function response turn comes immediately after a function call turn.")
			}
			if len(prevCalls) != len(responses) {
				return InvalidArgument("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.")
			}
			slices.Sort(prevCalls)
			slices.Sort(responses)
			if !slices.Equal(prevCalls, responses) {
				return InvalidArgument("Please ensure that the function response names match the function call names of the function call turn.")
			}
		}
	}
	return nil
}

// checkSignatures applies Gemini 3's rule: in the current turn (after the
// last user text), the first function call of each model step carries the
// thought signature the model gave it.
func checkSignatures(req *Request, model string) *Failure {
	if !strings.HasPrefix(model, "gemini-3") {
		return nil
	}
	start := 0
	for i, c := range req.Contents {
		if c.Role != "model" && partsText(c.Parts, "") != "" {
			start = i + 1
		}
	}
	for i := start; i < len(req.Contents); i++ {
		for j, p := range req.Contents[i].Parts {
			if p.FunctionCall == nil {
				continue
			}
			if p.ThoughtSignature == "" {
				return InvalidArgument(fmt.Sprintf("Function call is missing a thought_signature in functionCall parts. "+
					"This is required for tools to work correctly, and missing thought_signature may lead to degraded "+
					"model performance. Additional data, function call `default_api:%s` , position %d.", p.FunctionCall.Name, j+1))
			}
			break // only the first call of a step carries one
		}
	}
	return nil
}

// checkBlob checks an inline image: type, data, base64.
func checkBlob(b *Blob, at string) *Failure {
	switch {
	case b.MimeType == "":
		return InvalidArgument(at + ".inline_data.mime_type: MIME type is required.\n")
	case b.Data == "":
		return InvalidArgument(at + ".inline_data.data: data is required.\n")
	}
	if _, err := base64.StdEncoding.DecodeString(b.Data); err != nil {
		return InvalidArgument(fmt.Sprintf("Invalid value at '%s' (TYPE_BYTES), Base64 decoding failed",
			strings.TrimPrefix(at, "* GenerateContentRequest.")+".inline_data.data"))
	}
	if strings.HasPrefix(b.MimeType, "image/") && !slices.Contains(imageTypes(), b.MimeType) {
		return InvalidArgument("Unsupported MIME type: " + b.MimeType)
	}
	return nil
}

// checkGeneration applies the API's rules to the output and sampling
// parameters the function-calling era added.
func checkGeneration(g *GenerationConfig, model string) *Failure {
	const at = "* GenerateContentRequest.generation_config"
	switch g.ResponseMimeType {
	case "", "text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum":
	default:
		return InvalidArgument(at + ".response_mime_type: allowed mimetypes are `text/plain`, `application/json`, " +
			"`application/xml`, `application/yaml` and `text/x.enum`.\n")
	}
	if g.ResponseSchema != nil && g.ResponseMimeType != "application/json" && g.ResponseMimeType != "text/x.enum" {
		return InvalidArgument(at + ".response_schema: response_mime_type must be application/json or text/x.enum " +
			"when response_schema is set.\n")
	}
	for _, p := range []struct {
		name string
		v    *float64
	}{{"presence_penalty", g.PresencePenalty}, {"frequency_penalty", g.FrequencyPenalty}} {
		if p.v != nil && (*p.v < -2 || *p.v >= 2) {
			return InvalidArgument(fmt.Sprintf("%s.%s: must be in the range [-2.0, 2.0), got %g\n", at, p.name, *p.v))
		}
	}
	if g.Logprobs != nil {
		if g.ResponseLogprobs == nil || !*g.ResponseLogprobs {
			return InvalidArgument(at + ".logprobs: logprobs is only valid when response_logprobs is true.\n")
		}
		if *g.Logprobs < 0 || *g.Logprobs > 20 {
			return InvalidArgument(fmt.Sprintf("%s.logprobs: logprobs must be in the range [0, 20], got %d\n", at, *g.Logprobs))
		}
	}
	if t := g.ThinkingConfig; t != nil && t.ThinkingBudget != nil {
		b := *t.ThinkingBudget
		switch {
		case b < -1 || b > 32768:
			return InvalidArgument(fmt.Sprintf("%s.thinking_config.thinking_budget: The thinking budget %d is invalid. "+
				"Please choose a value between -1 and 32768.\n", at, b))
		case b == 0 && strings.Contains(model, "2.5-pro"):
			return InvalidArgument("Budget 0 is invalid. This model only works in thinking mode.")
		}
	}
	return nil
}
