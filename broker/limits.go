package broker

import (
	"fmt"
	"strings"
)

// Limits on what a message may name. NATS refuses a protocol line (the
// PUB/HPUB line holding subject and reply subject) over 4 KiB by closing
// the connection, so every subject llmq publishes on, or passes on as a
// reply subject, is checked against these before it is used.
const (
	// MaxTierLen is the longest tier name, in bytes.
	MaxTierLen = 128
	// MaxWorkerIDLen is the longest worker id, in bytes.
	MaxWorkerIDLen = 128
	// MaxReplyLen is the longest reply subject a job may carry, in bytes.
	// nats.go's inboxes are about 50 bytes; 1 KiB leaves room for any
	// custom inbox prefix and keeps a forwarded job's protocol line (reply,
	// worker subject, sizes) far below the server's 4 KiB.
	MaxReplyLen = 1024
	// MaxNameLen bounds other names carried in messages (deployment,
	// provider, model, host, state, error codes).
	MaxNameLen = 256
)

// ValidTier reports whether tier can be a subject suffix: not empty, at
// most MaxTierLen bytes, no spaces, control characters or wildcards, no
// empty tokens.
func ValidTier(tier string) bool {
	if tier == "" || len(tier) > MaxTierLen {
		return false
	}
	for i := 0; i < len(tier); i++ {
		if c := tier[i]; c <= ' ' || c == '*' || c == '>' || c == 0x7f {
			return false
		}
	}
	return !strings.HasPrefix(tier, ".") && !strings.HasSuffix(tier, ".") && !strings.Contains(tier, "..")
}

// ValidWorkerID reports whether id can be a worker id: one subject token of
// letters, digits, '-' and '_', at most MaxWorkerIDLen bytes.
func ValidWorkerID(id string) bool {
	return id != "" && len(id) <= MaxWorkerIDLen && Token(id) == id
}

// CheckReply checks a reply subject named by a message llmq will answer or
// pass on: a literal subject (no wildcards, spaces or empty tokens) of at
// most MaxReplyLen bytes, outside llmq's own subjects (<prefix>.…) and the
// server's ($JS, $SYS, $SRV, …), so that nobody can make a component
// publish its answers onto a subject that means something else.
func (s Subjects) CheckReply(reply string) error {
	switch {
	case reply == "":
		return fmt.Errorf("no reply subject")
	case len(reply) > MaxReplyLen:
		return fmt.Errorf("reply subject of %d bytes is over the %d llmq allows", len(reply), MaxReplyLen)
	case reply[0] == '$':
		return fmt.Errorf("reply subject %.64q is a system subject", reply)
	case strings.HasPrefix(reply, s.prefix()+"."):
		return fmt.Errorf("reply subject %.64q is one of llmq's own subjects", reply)
	}
	start := 0
	for i := 0; i <= len(reply); i++ {
		if i < len(reply) {
			c := reply[i]
			if c <= ' ' || c == 0x7f {
				return fmt.Errorf("reply subject %.64q has a space or control character", reply)
			}
			if c != '.' {
				continue
			}
		}
		switch tok := reply[start:i]; tok {
		case "":
			return fmt.Errorf("reply subject %.64q has an empty token", reply)
		case "*", ">":
			return fmt.Errorf("reply subject %.64q has a wildcard", reply)
		}
		start = i + 1
	}
	return nil
}
