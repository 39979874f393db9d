// The official openai npm client, unchanged, running the whole
// chat-completions request against llmq's HTTP gateway: a complete tool loop
// (model asks → the client answers with a tool message → model answers),
// plain and streamed; a json_schema request, plain and streamed; and
// embeddings.
// Usage: node features.mjs <base URL> <api key> <chat tier> <embedding tier, or "-">
// Prints one JSON summary line last; cmd/llmq/gateway_node_test.go checks it.
import OpenAI from "openai";

const [baseURL, apiKey, tier, embedTier] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
const summary = { ok: true, errors: [], tools: {}, json: {}, embeddings: null };
const fail = (msg) => { summary.ok = false; summary.errors.push(msg); };

const tools = [{
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather of a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
      additionalProperties: false,
    },
    strict: true,
  },
}];
const question = { role: "user", content: "What is the weather in Paris" };

// The tool's side: what the client computes for a call.
const runTool = (call) => {
  const args = JSON.parse(call.function.arguments);
  return `${args.city}: 21 degrees ${args.unit}, sunny`;
};

// One tool loop. ask(messages) returns the assistant's message and finish
// reason, by a plain or a streamed request.
const loop = async (ask) => {
  const first = await ask([question]);
  const calls = first.message.tool_calls ?? [];
  const out = { finish1: first.finish, calls: calls.map((c) => ({ id: c.id, type: c.type, name: c.function.name, arguments: c.function.arguments })) };
  if (calls.length === 0) return out;
  const messages = [question, first.message, ...calls.map((c) => ({ role: "tool", tool_call_id: c.id, content: runTool(c) }))];
  const second = await ask(messages);
  out.finish2 = second.finish;
  out.answer = second.message.content;
  out.toolResult = runTool(calls[0]);
  return out;
};

const plainAsk = async (messages) => {
  const c = await client.chat.completions.create({ model: tier, messages, tools, tool_choice: "auto", parallel_tool_calls: false });
  return { message: c.choices[0].message, finish: c.choices[0].finish_reason };
};

// Streamed, read chunk by chunk: the tool calls are assembled here from
// delta.tool_calls by index, as an OpenAI client does.
let deltas = 0;
const streamAsk = async (messages) => {
  const stream = await client.chat.completions.create({ model: tier, messages, tools, stream: true, stream_options: { include_usage: true } });
  let content = "", finish = null;
  const calls = [];
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      content += ch.delta?.content ?? "";
      for (const d of ch.delta?.tool_calls ?? []) {
        deltas++;
        calls[d.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } };
        const c = calls[d.index];
        if (d.id) c.id = d.id;
        if (d.function?.name) c.function.name += d.function.name;
        c.function.arguments += d.function?.arguments ?? "";
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  const message = { role: "assistant", content: calls.length ? null : content };
  if (calls.length) message.tool_calls = calls;
  return { message, finish };
};

// Streamed through the SDK's helper, which assembles the stream itself.
const helperAsk = async (messages) => {
  const runner = client.chat.completions.stream({ model: tier, messages, tools });
  const c = await runner.finalChatCompletion();
  return { message: c.choices[0].message, finish: c.choices[0].finish_reason };
};

const citySchema = {
  type: "json_schema",
  json_schema: {
    name: "city",
    strict: true,
    schema: {
      type: "object",
      properties: { name: { type: "string" }, population: { type: "integer" }, capital: { type: "boolean" } },
      required: ["name", "population", "capital"],
      additionalProperties: false,
    },
  },
};
const jsonMessages = [{ role: "user", content: "Describe Rome" }];

try {
  summary.tools.plain = await loop(plainAsk);
  summary.tools.stream = await loop(streamAsk);
  summary.tools.streamDeltas = deltas;
  summary.tools.helper = await loop(helperAsk);

  const plain = await client.chat.completions.create({ model: tier, messages: jsonMessages, response_format: citySchema });
  summary.json.plain = { finish: plain.choices[0].finish_reason, value: JSON.parse(plain.choices[0].message.content) };
  const stream = await client.chat.completions.create({ model: tier, messages: jsonMessages, response_format: citySchema, stream: true });
  let text = "", finish = null;
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      text += ch.delta?.content ?? "";
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  summary.json.stream = { finish, value: JSON.parse(text) };

  if (embedTier !== "-") {
    // The SDK asks for base64 unless told otherwise, and decodes it.
    const b64 = await client.embeddings.create({ model: embedTier, input: ["llmq routes embeddings", "like chat jobs", "llmq routes embeddings"] });
    const floats = await client.embeddings.create({ model: embedTier, input: "like chat jobs", encoding_format: "float", dimensions: 8 });
    summary.embeddings = {
      object: b64.object, model: b64.model, usage: b64.usage,
      indexes: b64.data.map((d) => d.index),
      dims: b64.data.map((d) => d.embedding.length),
      sameTextSameVector: JSON.stringify(b64.data[0].embedding) === JSON.stringify(b64.data[2].embedding),
      floatMatchesBase64: floats.data[0].embedding.every((x, i) => Math.abs(x - b64.data[1].embedding[i]) < 1e-6),
      floatDims: floats.data[0].embedding.length,
    };
    try {
      await client.embeddings.create({ model: tier, input: "x" });
      fail("embeddings on a chat tier: no error");
    } catch (err) {
      summary.embeddings.wrongTier = { class: err?.constructor?.name, status: err?.status, code: err?.code ?? null };
    }
  }
} catch (err) {
  fail(`unexpected: ${err?.constructor?.name}: ${err?.message}`);
}
console.log(JSON.stringify(summary));
