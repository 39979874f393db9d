// A JavaScript llmq producer, written from docs/protocol.md alone.
//
//   node producer.mjs [NATS_URL] [PREFIX]
//
// NATS_URL defaults to $NATS_URL, then nats://127.0.0.1:4222; PREFIX to
// $LLMQ_PREFIX, then "llm". It runs against the demo fleet of `llmq up`
// (tiers tier1, tier2, tier3 of simulated models) and checks what the
// protocol promises:
//
//   json          a JSON job to tier1 (content as text parts, stop as a
//                 string, Llmq-Timeout): the reply's text and routing
//   msgpack       a msgpack job to tier2 (stop as an array, Llmq-Deadline,
//                 Llmq-Disable-Fallbacks)
//   unknown_tier  a job to a tier nobody serves: the typed error
//   stream        a streamed job to tier1 (Llmq-Streaming): chunks in
//                 Llmq-Seq order until the message marked Llmq-Stream: end
//   cancel        a streamed job cancelled through the chunks' reply subject:
//                 the stream stops and no end marker comes
//   no_responders a job on a prefix no dispatcher listens on: NATS's 503
//
// It prints one JSON line (the summary) on stdout and exits 0 when every
// check passed, 1 otherwise (the summary then has ok:false and errors).

import { connect, createInbox, headers } from "nats";
import { decode as mpDecode, encode as mpEncode } from "@msgpack/msgpack";

const natsURL = process.argv[2] || process.env.NATS_URL || "nats://127.0.0.1:4222";
const prefix = process.argv[3] || process.env.LLMQ_PREFIX || "llm";

// Header names, exactly as the protocol spells them (case-sensitive).
const H = {
  contentType: "Content-Type",
  deadline: "Llmq-Deadline",
  timeout: "Llmq-Timeout",
  stream: "Llmq-Stream",
  seq: "Llmq-Seq",
  streaming: "Llmq-Streaming",
  disableFallbacks: "Llmq-Disable-Fallbacks",
  status: "Nats-Service-Error-Code",
  errorMessage: "Nats-Service-Error",
  errorCode: "Llmq-Error-Code",
};
const JSON_CT = "application/json";
const MSGPACK_CT = "application/msgpack";

const te = new TextEncoder();
const td = new TextDecoder();
const errors = [];
const summary = { ok: false, url: natsURL, prefix };

function check(cond, what) {
  if (!cond) errors.push(what);
  return cond;
}

function jobsSubject(tier, p = prefix) {
  return `${p}.jobs.${tier}`;
}

// The header value, or "" (nats.js matches header names exactly).
function hget(msg, name) {
  return msg.headers ? msg.headers.get(name) : "";
}

// A reply is an error when it carries Nats-Service-Error-Code.
function isError(msg) {
  return hget(msg, H.status) !== "";
}

// NATS's own "no responders": an empty message with status 503.
function isNoResponders(msg) {
  return msg.data.length === 0 && msg.headers !== undefined && msg.headers.code === 503;
}

// The body in the codec the reply's Content-Type names: JSON for
// application/json, msgpack otherwise.
function decodeBody(msg) {
  const ct = hget(msg, H.contentType);
  return ct.startsWith(JSON_CT) ? JSON.parse(td.decode(msg.data)) : mpDecode(msg.data);
}

function jobHeaders(contentType, extra = {}) {
  const h = headers();
  h.set(H.contentType, contentType);
  for (const [k, v] of Object.entries(extra)) h.set(k, String(v));
  return h;
}

function textOf(resp) {
  return resp?.choices?.[0]?.message?.content ?? "";
}

function wordsOf(s) {
  return s.split(/\s+/).filter(Boolean);
}

// Every word of the reply should be a word of the prompt: the simulated
// models echo the last user message.
function echoes(text, prompt) {
  const allowed = new Set(wordsOf(prompt));
  const words = wordsOf(text);
  return words.length > 0 && words.every((w) => allowed.has(w));
}

function checkRouting(routing, tier, where) {
  if (!check(routing && typeof routing === "object", `${where}: no routing block`)) return;
  check(routing.tier === tier, `${where}: routing.tier ${JSON.stringify(routing.tier)}, want ${tier}`);
  for (const f of ["deployment", "worker", "provider", "model"]) {
    check(typeof routing[f] === "string" && routing[f] !== "", `${where}: routing.${f} missing`);
  }
  check(Number.isInteger(routing.attempts) && routing.attempts >= 1, `${where}: routing.attempts ${routing.attempts}`);
  check(typeof routing.queue_ms === "number" && typeof routing.call_ms === "number", `${where}: routing.queue_ms/call_ms missing`);
}

// (a) JSON job: content as text parts, stop as one string, relative time-out.
async function jsonJob(nc) {
  const parts = [
    { type: "text", text: "alpha bravo " },
    { type: "text", text: "charlie delta" },
  ];
  const prompt = parts.map((p) => p.text).join("");
  const body = { messages: [{ role: "user", content: parts }], stop: "\n\n", temperature: 0.2 };
  const msg = await nc.request(jobsSubject("tier1"), te.encode(JSON.stringify(body)), {
    timeout: 30000,
    headers: jobHeaders(JSON_CT, { [H.timeout]: 20000 }),
  });
  const out = { content_type: hget(msg, H.contentType) };
  if (!check(!isError(msg), `json: error reply ${hget(msg, H.errorCode)}: ${hget(msg, H.errorMessage)}`)) return out;
  check(out.content_type === JSON_CT, `json: reply Content-Type ${out.content_type}, want ${JSON_CT}`);
  const resp = JSON.parse(td.decode(msg.data));
  Object.assign(out, {
    prompt,
    text: textOf(resp),
    object: resp.object,
    finish_reason: resp.choices?.[0]?.finish_reason,
    usage: resp.usage,
    routing: resp.routing,
  });
  check(resp.object === "chat.completion", `json: object ${resp.object}`);
  check(typeof resp.id === "string" && resp.id !== "", "json: no id");
  check(resp.choices?.[0]?.message?.role === "assistant", "json: role is not assistant");
  check(echoes(out.text, prompt), `json: reply ${JSON.stringify(out.text)} does not echo the prompt`);
  check(resp.usage?.total_tokens === resp.usage?.prompt_tokens + resp.usage?.completion_tokens, "json: usage does not add up");
  checkRouting(resp.routing, "tier1", "json");
  return out;
}

// (b) msgpack job: the default codec, stop as an array, absolute deadline.
async function msgpackJob(nc) {
  const prompt = "echo foxtrot golf";
  const body = {
    messages: [
      { role: "system", content: "be brief" },
      { role: "user", content: prompt },
    ],
    stop: ["\n", "END"],
    max_tokens: 8,
  };
  const msg = await nc.request(jobsSubject("tier2"), mpEncode(body), {
    timeout: 30000,
    headers: jobHeaders(MSGPACK_CT, { [H.deadline]: Date.now() + 20000, [H.disableFallbacks]: "true" }),
  });
  const out = { content_type: hget(msg, H.contentType) };
  if (!check(!isError(msg), `msgpack: error reply ${hget(msg, H.errorCode)}: ${hget(msg, H.errorMessage)}`)) return out;
  check(out.content_type === MSGPACK_CT, `msgpack: reply Content-Type ${out.content_type}, want ${MSGPACK_CT}`);
  const resp = mpDecode(msg.data);
  Object.assign(out, {
    prompt,
    text: textOf(resp),
    object: resp.object,
    finish_reason: resp.choices?.[0]?.finish_reason,
    usage: resp.usage,
    routing: resp.routing,
  });
  check(resp.object === "chat.completion", `msgpack: object ${resp.object}`);
  check(echoes(out.text, prompt), `msgpack: reply ${JSON.stringify(out.text)} does not echo the prompt`);
  check(resp.usage?.completion_tokens <= 8, `msgpack: max_tokens 8 not honoured (${resp.usage?.completion_tokens})`);
  checkRouting(resp.routing, "tier2", "msgpack");
  return out;
}

// (c) a tier nobody serves: a typed error reply.
async function unknownTier(nc) {
  const body = { messages: [{ role: "user", content: "anyone there" }] };
  const msg = await nc.request(jobsSubject("no-such-tier"), te.encode(JSON.stringify(body)), {
    timeout: 10000,
    headers: jobHeaders(JSON_CT),
  });
  const out = {
    status_header: hget(msg, H.status),
    code_header: hget(msg, H.errorCode),
    message_header: hget(msg, H.errorMessage),
  };
  if (!check(isError(msg), "unknown_tier: reply is not an error")) return out;
  const e = decodeBody(msg).error ?? {};
  Object.assign(out, { code: e.code, type: e.type, status: e.status, message: e.message });
  check(e.code === "unknown_tier", `unknown_tier: code ${e.code}`);
  check(e.type === "invalid_request_error", `unknown_tier: type ${e.type}`);
  check(e.status === 404 && out.status_header === "404", `unknown_tier: status ${e.status} / header ${out.status_header}`);
  check(out.code_header === e.code, `unknown_tier: Llmq-Error-Code header ${out.code_header}`);
  return out;
}

// Reads a stream on sub until its end marker, an error reply, NATS's 503, a
// gap in Llmq-Seq (lost chunks: the stream is cancelled) or the time limit.
async function readStream(nc, sub, where, limitMs) {
  const res = { chunks: [], seqs: [], ended: false, error: null, control: "", timedOut: false };
  const timer = setTimeout(() => {
    res.timedOut = true;
    sub.unsubscribe();
  }, limitMs);
  try {
    for await (const m of sub) {
      if (isNoResponders(m)) {
        res.error = { code: "no_deployments", message: "no dispatcher is listening" };
        break;
      }
      if (m.reply) res.control = m.reply;
      const seq = hget(m, H.seq);
      if (seq !== "") {
        res.seqs.push(Number(seq));
        if (Number(seq) !== res.seqs.length) {
          if (res.control) nc.publish(res.control); // cancel what is left
          res.error = { code: "connection_error", message: `lost chunks: Llmq-Seq ${seq}, want ${res.seqs.length}` };
          break;
        }
      }
      const end = hget(m, H.stream) === "end";
      if (isError(m)) {
        // An error ends the stream, with Llmq-Stream: end or without it
        // (an error before the first chunk is a plain error reply).
        res.error = decodeBody(m).error ?? { code: hget(m, H.errorCode) };
        res.ended = end;
        break;
      }
      const chunk = decodeBody(m);
      res.chunks.push(chunk);
      if (end) {
        res.ended = true;
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
  if (res.timedOut) errors.push(`${where}: no end marker within ${limitMs} ms`);
  return res;
}

// (d) a streamed job: subscribe to an inbox first, then publish with the
// inbox as reply subject, stream:true in the body and Llmq-Streaming: true.
async function streamJob(nc, prompt) {
  const inbox = createInbox();
  const sub = nc.subscribe(inbox);
  const body = { messages: [{ role: "user", content: prompt }], stream: true };
  nc.publish(jobsSubject("tier1"), te.encode(JSON.stringify(body)), {
    reply: inbox,
    headers: jobHeaders(JSON_CT, { [H.deadline]: Date.now() + 20000, [H.streaming]: "true" }),
  });
  const r = await readStream(nc, sub, "stream", 25000);
  const out = { seqs: r.seqs, ended: r.ended, deltas: [], control: r.control !== "" };
  if (!check(r.error === null, `stream: error ${JSON.stringify(r.error)}`)) return out;
  check(r.ended, "stream: no message marked Llmq-Stream: end");
  check(r.chunks.length >= 2, `stream: ${r.chunks.length} messages, want content chunks and an end`);
  check(r.seqs.length === r.chunks.length && r.seqs.every((s, i) => s === i + 1), `stream: Llmq-Seq ${r.seqs}, want 1..n`);
  check(out.control, "stream: chunks carry no reply (control) subject");
  const id = r.chunks[0]?.id;
  for (const [i, c] of r.chunks.entries()) {
    check(c.object === "chat.completion.chunk", `stream: chunk ${i + 1} object ${c.object}`);
    check(c.id === id, `stream: chunk ${i + 1} id ${c.id}, want ${id}`);
  }
  check(r.chunks[0]?.choices?.[0]?.delta?.role === "assistant", "stream: first chunk has no role assistant");
  const last = r.chunks.at(-1);
  const body0 = r.chunks.slice(0, -1);
  for (const [i, c] of body0.entries()) {
    check(c.choices?.[0]?.finish_reason === null, `stream: chunk ${i + 1} has a finish_reason before the end`);
    out.deltas.push(c.choices?.[0]?.delta?.content ?? "");
  }
  out.text = out.deltas.join("");
  out.finish_reason = last?.choices?.[0]?.finish_reason ?? null;
  out.last_delta = last?.choices?.[0]?.delta ?? null;
  out.usage = last?.usage;
  out.routing = last?.routing;
  check(typeof out.finish_reason === "string" && out.finish_reason !== "", "stream: last chunk has no finish_reason");
  check(out.usage && out.usage.completion_tokens > 0, "stream: last chunk has no usage");
  check(echoes(out.text, prompt), `stream: text ${JSON.stringify(out.text)} does not echo the prompt`);
  checkRouting(out.routing, "tier1", "stream");
  return out;
}

// (e) cancel a stream: after a few chunks, publish an empty message to the
// chunks' reply subject (the worker's control subject). The worker stops the
// call and sends nothing more: no end marker comes.
async function cancelJob(nc) {
  const inbox = createInbox();
  const sub = nc.subscribe(inbox);
  // 2000 tokens at the demo's 200-400 tokens/s take seconds.
  const body = { messages: [{ role: "user", content: "long story please" }], stream: true, max_tokens: 2000 };
  nc.publish(jobsSubject("tier1"), te.encode(JSON.stringify(body)), {
    reply: inbox,
    headers: jobHeaders(JSON_CT, { [H.timeout]: 20000, [H.streaming]: "true" }),
  });
  const out = { before_cancel: 0, after_cancel: 0, cancelled: false, end_seen: false };
  let timer = setTimeout(() => sub.unsubscribe(), 20000);
  try {
    for await (const m of sub) {
      if (isNoResponders(m) || isError(m)) {
        errors.push(`cancel: error reply ${hget(m, H.errorCode) || "503"}`);
        break;
      }
      if (hget(m, H.stream) === "end") {
        out.end_seen = true;
        break;
      }
      if (out.cancelled) {
        out.after_cancel++; // already on its way when the cancel arrived
        continue;
      }
      out.before_cancel++;
      if (out.before_cancel === 3) {
        if (!check(m.reply, "cancel: chunk has no reply (control) subject")) break;
        nc.publish(m.reply); // any body cancels; this one is empty
        out.cancelled = true;
        // Keep listening a while: nothing but stragglers may come.
        clearTimeout(timer);
        timer = setTimeout(() => sub.unsubscribe(), 1500);
      }
    }
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
  check(out.cancelled, `cancel: the stream ended after ${out.before_cancel} chunks, before it could be cancelled`);
  check(!out.end_seen, "cancel: an end marker came: the worker did not stop");
  check(out.after_cancel < 50, `cancel: ${out.after_cancel} chunks after the cancel: the worker did not stop`);
  return out;
}

// (f) no dispatcher: NATS answers a request with an empty 503 message, which
// nats.js turns into an error with code "503".
async function noResponders(nc) {
  const body = { messages: [{ role: "user", content: "hello" }] };
  try {
    await nc.request(jobsSubject("tier1", `${prefix}-nobody`), te.encode(JSON.stringify(body)), {
      timeout: 5000,
      headers: jobHeaders(JSON_CT),
    });
  } catch (err) {
    const out = { error_code: String(err.code) };
    check(out.error_code === "503", `no_responders: error code ${err.code}, want 503`);
    return out;
  }
  errors.push("no_responders: a reply came from a prefix nobody serves");
  return {};
}

async function main() {
  const nc = await connect({ servers: natsURL, name: "llmq-producer-example" });
  summary.max_payload = nc.info?.max_payload;
  try {
    summary.json = await jsonJob(nc);
    summary.msgpack = await msgpackJob(nc);
    summary.unknown_tier = await unknownTier(nc);
    summary.stream = await streamJob(nc, summary.json.prompt ?? "alpha bravo charlie delta");
    summary.cancel = await cancelJob(nc);
    summary.no_responders = await noResponders(nc);
  } finally {
    await nc.drain();
  }
}

try {
  await main();
} catch (err) {
  errors.push(`unexpected: ${err?.stack ?? err}`);
}
summary.ok = errors.length === 0;
if (!summary.ok) summary.errors = errors;
process.stdout.write(JSON.stringify(summary) + "\n");
process.exit(summary.ok ? 0 : 1);
