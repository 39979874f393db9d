package dispatcher

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/llmq/llmq/schema"
)

// maxAnswerableReply is the longest reply subject the dispatcher publishes
// an error to. The server closes a connection whose PUB/HPUB protocol line
// is over 4 KiB (and nats.go then gives the connection up): the line is
// "HPUB <reply> <header bytes> <total bytes>\r\n", so 48 bytes are left for
// the verb, the sizes and the line end.
const maxAnswerableReply = 4096 - 48

// refuseReply handles a job or bounce (what) whose reply subject failed
// broker.Subjects.CheckReply: it is never forwarded. It is answered
// bad_request when its reply subject can safely be published to (only too
// long for llmq, say), else dropped; either way counted, and logged at
// most once per few seconds.
func (d *Dispatcher) refuseReply(m *nats.Msg, what string, err error, now time.Time) {
	n := d.drops.badReplies.Add(1)
	answer := d.answerable(m.Reply)
	if d.drops.replyLog.allow(now) {
		d.log.Warn(what+" refused: unusable reply subject", "subject", clip(m.Subject), "reply_bytes", len(m.Reply), "err", err, "answered", answer, "refused", n)
	}
	if answer {
		d.reply(m, schema.Errorf(schema.CodeBadRequest, "%v", err))
	}
}

// answerable reports whether an error may be published to reply although
// CheckReply refused it: only when the publication cannot hurt. Not when
// the server would close the connection for it (too long), nor on a
// subject that means something else: a system subject ($JS.API… would run
// an API call), one of llmq's own (a job, a beat), or one with wildcards
// or spaces.
func (d *Dispatcher) answerable(reply string) bool {
	if reply == "" || len(reply) > maxAnswerableReply || reply[0] == '$' || strings.HasPrefix(reply, d.cfg.Subjects.Name()+".") {
		return false
	}
	start := 0
	for i := 0; i <= len(reply); i++ {
		if i < len(reply) {
			if c := reply[i]; c <= ' ' || c == 0x7f {
				return false
			} else if c != '.' {
				continue
			}
		}
		if tok := reply[start:i]; tok == "*" || tok == ">" {
			return false
		}
		start = i + 1
	}
	return true
}
