package broker

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedactHidesCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pass@host:4222", "nats://***@host:4222"},
		{"tls://token@host:4222", "tls://***@host:4222"},
		{"nats://u:p@a:1,nats://b:2,nats://v:q@c:3", "nats://***@a:1,nats://b:2,nats://***@c:3"},
		{"nats://u:p@ss@host:4222", "nats://***@host:4222"},
		{"user:pass@host:4222", "***@host:4222"}, // nats.go adds nats:// to such URLs
		{"nats://host:4222,u:p@other:4222", "nats://host:4222,***@other:4222"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := redact(tt.in); got != tt.want {
				t.Fatalf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHeaderSafe(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 511) + "é" // the rune straddles byte 512
	tests := []struct {
		name, in, want string
	}{
		{"plain text unchanged", "upstream said no", "upstream said no"},
		{"CR and LF become spaces", "line one\r\nline two\nthree\r", "line one  line two three "},
		{"512 bytes kept", strings.Repeat("a", 512), strings.Repeat("a", 512)},
		{"longer cut to 512", strings.Repeat("b", 2000), strings.Repeat("b", 512)},
		{"newline past the cut does not matter", strings.Repeat("c", 600) + "\n", strings.Repeat("c", 512)},
		{"cut does not split a rune", long, strings.Repeat("x", 511)},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := headerSafe(tt.in)
			if got != tt.want {
				t.Fatalf("headerSafe = %q (%d bytes), want %q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
			if len(got) > 512 || strings.ContainsAny(got, "\r\n") || !utf8.ValidString(got) {
				t.Fatalf("headerSafe = %q is not one safe header line", got)
			}
		})
	}
}
