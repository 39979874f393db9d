package gemini

import (
	"testing"

	"github.com/llmq/llmq/schema"
)

// benchParams is a tool schema of the size real agents send: nested
// objects, a $ref, nullable fields, enums.
const benchParams = `{"type":"object","properties":{
	"query":{"type":"string","description":"what to look for"},
	"filters":{"type":"object","properties":{"lang":{"type":["string","null"],"enum":["en","fr","de",null]},
		"since":{"type":"string","format":"date-time"},"tags":{"type":"array","items":{"type":"string"},"maxItems":8}},
		"additionalProperties":false},
	"page":{"anyOf":[{"$ref":"#/$defs/Page"},{"type":"null"}]},
	"limit":{"type":"integer","minimum":1,"maximum":100}},
	"required":["query"],"additionalProperties":false,
	"$defs":{"Page":{"type":"object","properties":{"cursor":{"type":"string"},"size":{"type":"integer"}}}}}`

func BenchmarkConvertSchema(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := convertSchema(schema.RawJSON(benchParams), "tools[0].function.parameters"); err != nil {
			b.Fatal(err)
		}
	}
}
