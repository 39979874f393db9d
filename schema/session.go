package schema

// HeaderSession, set by a producer, names the conversation (session) a job
// belongs to. With conversation affinity on (router_settings.
// llmq_conversation_affinity) the jobs of one session go back to the host
// that served the earlier ones while it has room, so that its prompt cache
// is reused; without the header the dispatcher takes the body's
// metadata.session_id, else its user, else a hash of the conversation's
// opening (system messages and first user message), and writes what it
// took here for the job's retries. At most MaxSessionLen bytes are read.
const HeaderSession = "Llmq-Session"

// MaxSessionLen bounds the part of a session name that counts.
const MaxSessionLen = 256
