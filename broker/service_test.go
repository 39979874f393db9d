package broker_test

import (
	"testing"

	"github.com/llmq/llmq/broker"
)

func TestServiceVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, version, build string }{
		{"v1.2.3", "1.2.3", "v1.2.3"},
		{"0.1.0-3-gabc123-dirty", "0.1.0-3-gabc123-dirty", "0.1.0-3-gabc123-dirty"},
		{"dev", "0.0.0", "dev"},
		{"", "0.0.0", "dev"},
		{"1.0.0-01", "0.0.0", "1.0.0-01"}, // a leading zero micro refuses
		{"abc1234", "0.0.0", "abc1234"},
	} {
		if v, b := broker.ServiceVersion(tt.in); v != tt.version || b != tt.build {
			t.Errorf("broker.ServiceVersion(%q) = %q, %q; want %q, %q", tt.in, v, b, tt.version, tt.build)
		}
	}
}
