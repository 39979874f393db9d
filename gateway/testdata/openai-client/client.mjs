// The official openai npm client, unchanged, against llmq's HTTP gateway.
// Usage: node client.mjs <base URL, e.g. http://127.0.0.1:8080/v1> <api key> <tier>
// Prints one JSON summary line last; cmd/llmq/gateway_node_test.go checks it.
import OpenAI from "openai";

const [baseURL, apiKey, tier] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
const summary = { ok: true, errors: [], plain: [], stream: [], failures: {} };
const fail = (msg) => { summary.ok = false; summary.errors.push(msg); };

try {
  // GET /v1/models
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  summary.models = models;

  // Plain completions.
  for (let i = 0; i < 3; i++) {
    const c = await client.chat.completions.create({
      model: tier,
      messages: [{ role: "user", content: `plain question ${i}` }],
      max_tokens: 5,
    });
    summary.plain.push({
      object: c.object, content: c.choices[0].message.content, finish: c.choices[0].finish_reason,
      usage: c.usage, routing: c.routing,
    });
  }

  // Streamed completions, with the usage chunk.
  for (let i = 0; i < 2; i++) {
    const stream = await client.chat.completions.create({
      model: tier,
      messages: [{ role: "user", content: `streamed question ${i}` }],
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = "", finish = null, usage = null, chunks = 0, routing = null;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) {
        content += ch.delta?.content ?? "";
        if (ch.finish_reason) { finish = ch.finish_reason; routing = chunk.routing ?? null; }
      }
    }
    summary.stream.push({ content, finish, usage, chunks, routing });
  }

  // The stream helper of the SDK accumulates the same stream.
  const runner = client.chat.completions.stream({
    model: tier, messages: [{ role: "user", content: "helper stream" }], max_tokens: 3,
    stream_options: { include_usage: true },
  });
  const final = await runner.finalChatCompletion();
  summary.helper = { content: final.choices[0].message.content, finish: final.choices[0].finish_reason, usage: final.usage ?? null };

  // Errors, as the SDK's typed errors.
  const expectError = async (name, fn) => {
    try {
      await fn();
      fail(`${name}: no error`);
    } catch (err) {
      summary.failures[name] = {
        class: err?.constructor?.name, status: err?.status, code: err?.code ?? null, type: err?.type ?? null,
        retryAfter: err?.headers?.get?.("retry-after") ?? null,
      };
    }
  };
  await expectError("unknown_model", () => client.chat.completions.create({
    model: "no-such-tier", messages: [{ role: "user", content: "x" }],
  }));
  await expectError("unknown_model_stream", () => client.chat.completions.create({
    model: "no-such-tier", messages: [{ role: "user", content: "x" }], stream: true,
  }));
  const stranger = new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 });
  await expectError("bad_key", () => stranger.chat.completions.create({
    model: tier, messages: [{ role: "user", content: "x" }],
  }));
  await expectError("bad_request", () => client.chat.completions.create({
    model: tier, messages: [{ role: "wizard", content: "x" }],
  }));
} catch (err) {
  fail(`unexpected: ${err?.constructor?.name}: ${err?.message}`);
}
console.log(JSON.stringify(summary));
