import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { startServer, type TestServer } from "../server-helpers.js";

/**
 * Random and mutated JSON bodies against every endpoint that takes one: never a 5xx, every error in
 * OpenAI's shape with `code` equal to the status, every 200 well formed. The bodies start from valid ones
 * and get fields of the wrong type, out of range, huge, nested or missing, so most of them pass the JSON
 * parser and reach the validation (and often the engine) behind it. fast-check prints the seed and the
 * shrunk body on failure; rerun one with `fc.assert(..., { seed, path })`. FUZZ_SCALE=10 runs ten times as
 * many bodies (about two minutes).
 */

const scale = Number(process.env.FUZZ_SCALE ?? 1);

// Numbers JSON can carry but JSON.stringify cannot write (1e400 parses to Infinity, big integers lose
// precision): written into the body text verbatim through a marker string.
const rawMarker = "\u0001raw:";
const raw = (literal: string) => `${rawMarker}${literal}`;
const rawLiteral = /"\\u0001raw:([^"]*)"/g;
const toBodyText = (body: unknown) => (JSON.stringify(body) ?? "null").replace(rawLiteral, "$1");

const oddNumbers = fc.constantFrom(
  0,
  -0,
  -1,
  0.5,
  1.5,
  -2.5,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32 + 1,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e21,
  1e308,
  -1e308,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  raw("1e400"),
  raw("-1e400"),
  raw("1e-400"),
  raw("123456789012345678901234567890"),
  raw("-0.0"),
  raw("1E2"),
);

const oddStrings = fc.constantFrom(
  "",
  " ",
  "NaN",
  "Infinity",
  "-1",
  "1e400",
  "null",
  "true",
  "<s>",
  "</s>",
  "\u0000",
  "\ud800",
  "\u202e",
  "🙂".repeat(50),
  "__proto__",
  "constructor",
);

/** Anything at all, nested a few levels. */
const junk: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    oddNumbers,
    fc.string(),
    oddStrings,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), oddStrings), tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** Long text inside the 1 MiB body limit. */
const longString = fc.oneof(
  fc.string({ minLength: 1000, maxLength: 5000 }),
  fc.constantFrom("x".repeat(200_000), "a b ".repeat(50_000), "\u00e9".repeat(100_000)),
);

/** Arrays nested deeper than any schema goes. */
const deepArray = fc
  .integer({ min: 100, max: 50_000 })
  .map((depth) => raw(`${"[".repeat(depth)}${"]".repeat(depth)}`));

const smallInt = fc.integer({ min: -3, max: 300 });
const number = fc.oneof(
  smallInt,
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -5, max: 5 }),
  oddNumbers,
);
const tokenId = fc.oneof(fc.integer({ min: 0, max: 511 }), fc.integer({ min: -2, max: 600 }), oddNumbers);
const tokenIds = fc.array(tokenId, { maxLength: 40 });
const text = fc.oneof(
  fc.constantFrom("hi", "Once upon a time"),
  fc.string({ maxLength: 40 }),
  oddStrings,
  longString,
);
const boolish = fc.oneof(fc.boolean(), fc.constantFrom(0, 1, "true", "false", null));

/** A value biased toward what each field accepts, and just beyond it. */
const fieldValues: Record<string, fc.Arbitrary<unknown>> = {
  model: fc.oneof(fc.constantFrom("tiny", "gpt-4", "", null), fc.string()),
  prompt: fc.oneof(
    text,
    fc.array(text, { maxLength: 4 }),
    tokenIds,
    fc.array(tokenIds, { maxLength: 4 }),
    fc.array(fc.oneof(text, tokenIds, tokenId), { maxLength: 4 }),
  ),
  messages: fc.oneof(
    fc.array(
      fc.record(
        {
          role: fc.oneof(
            fc.constantFrom("system", "developer", "user", "assistant", "tool", "User", ""),
            junk,
          ),
          content: fc.oneof(
            text,
            fc.array(
              fc.record(
                { type: fc.oneof(fc.constantFrom("text", "image_url"), junk), text: fc.oneof(text, junk) },
                { requiredKeys: [] },
              ),
              { maxLength: 3 },
            ),
            junk,
          ),
          name: fc.oneof(fc.string({ maxLength: 8 }), junk),
        },
        { requiredKeys: ["role"] },
      ),
      { maxLength: 4 },
    ),
    junk,
  ),
  max_tokens: number,
  max_completion_tokens: number,
  min_tokens: number,
  n: number,
  temperature: number,
  top_p: number,
  top_k: number,
  min_p: number,
  seed: number,
  priority: number,
  presence_penalty: number,
  frequency_penalty: number,
  repetition_penalty: number,
  logprobs: fc.oneof(number, boolish),
  top_logprobs: number,
  echo: boolish,
  ignore_eos: boolish,
  stream: boolish,
  stream_options: fc.oneof(fc.record({ include_usage: boolish }, { requiredKeys: [] }), junk),
  stop: fc.oneof(text, fc.array(text, { maxLength: 5 }), junk),
  stop_token_ids: fc.oneof(tokenIds, junk),
  user: fc.oneof(fc.string(), junk),
  add_special_tokens: boolish,
  add_generation_prompt: boolish,
  tokens: fc.oneof(tokenIds, fc.array(tokenIds, { maxLength: 3 }), junk),
};

/** Cheap valid bodies: a few tokens, at most two choices. */
const validBodies: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  "/v1/completions": fc.record(
    {
      prompt: fc.oneof(
        fc.constantFrom("hi", "Once"),
        fc.array(fc.integer({ min: 1, max: 511 }), { minLength: 1, maxLength: 8 }),
      ),
      max_tokens: fc.integer({ min: 1, max: 4 }),
      n: fc.integer({ min: 1, max: 2 }),
      temperature: fc.constantFrom(0, 0.7),
      stream: fc.boolean(),
    },
    { requiredKeys: ["prompt", "max_tokens"] },
  ),
  "/v1/chat/completions": fc.record(
    {
      messages: fc.constant([{ role: "user", content: "hi" }]),
      max_tokens: fc.integer({ min: 1, max: 4 }),
      n: fc.integer({ min: 1, max: 2 }),
      stream: fc.boolean(),
    },
    { requiredKeys: ["messages", "max_tokens"] },
  ),
  "/tokenize": fc.oneof(
    fc.record({ prompt: fc.constantFrom("hi", "Once upon a time") }),
    fc.record({ messages: fc.constant([{ role: "user", content: "hi" }]) }),
  ),
  "/detokenize": fc.record({ tokens: fc.array(fc.integer({ min: 0, max: 511 }), { maxLength: 8 }) }),
};

/** The fields each endpoint reads, plus some it does not and some that poison prototypes. */
const fieldsOf: Record<string, string[]> = {
  "/v1/completions": ["prompt", "echo", "logprobs"],
  "/v1/chat/completions": ["messages", "max_completion_tokens", "logprobs", "top_logprobs"],
  "/tokenize": ["prompt", "messages", "add_special_tokens", "add_generation_prompt", "model"],
  "/detokenize": ["tokens", "model"],
};
const samplingFields = [
  "model",
  "max_tokens",
  "min_tokens",
  "n",
  "temperature",
  "top_p",
  "top_k",
  "min_p",
  "seed",
  "priority",
  "presence_penalty",
  "frequency_penalty",
  "repetition_penalty",
  "ignore_eos",
  "stream",
  "stream_options",
  "stop",
  "stop_token_ids",
  "user",
];
fieldsOf["/v1/completions"].push(...samplingFields);
fieldsOf["/v1/chat/completions"].push(...samplingFields);
const strangeKeys = fc.constantFrom(
  "__proto__",
  "constructor",
  "prototype",
  "tools",
  "response_format",
  "",
  "stream ",
);

type Mutation = { kind: "set"; field: string; value: unknown } | { kind: "delete"; field: string };

function mutations(path: string): fc.Arbitrary<Mutation> {
  const field = fc.constantFrom(...fieldsOf[path]);
  return fc.oneof(
    field.chain((f) =>
      fc
        .oneof({ weight: 4, arbitrary: fieldValues[f] }, { weight: 1, arbitrary: junk })
        .map((value): Mutation => ({ kind: "set", field: f, value })),
    ),
    field.map((f): Mutation => ({ kind: "delete", field: f })),
    fc.record({ kind: fc.constant("set" as const), field: strangeKeys, value: junk }),
    field.chain((f) =>
      fc.oneof(longString, deepArray).map((value): Mutation => ({ kind: "set", field: f, value })),
    ),
  );
}

/** A body for `path`: valid, mutated a few times, or replaced by junk or broken text. */
function bodies(path: string): fc.Arbitrary<string> {
  const mutated = fc
    .tuple(validBodies[path], fc.array(mutations(path), { maxLength: 4 }))
    .map(([body, changes]) => {
      const out: Record<string, unknown> = { ...body };
      for (const change of changes) {
        if (change.kind === "delete") delete out[change.field];
        else
          Object.defineProperty(out, change.field, {
            value: change.value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
      }
      return toBodyText(out);
    });
  const broken = fc.oneof(
    junk.map(toBodyText),
    mutated.chain((body) => fc.nat({ max: body.length }).map((cut) => body.slice(0, cut))),
    fc.string(),
  );
  return fc.oneof({ weight: 9, arbitrary: mutated }, { weight: 1, arbitrary: broken });
}

// A Jinja chat template that reads the messages the way real ones do, and refuses some conversations.
const template =
  "{% if messages[0].role == 'assistant' %}{{ raise_exception('Conversations must start with a user turn') }}{% endif %}" +
  "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}{% if m.name %} ({{ m.name }}){% endif %}\n{% endfor %}" +
  "{% if add_generation_prompt %}<|assistant|>{% endif %}";
const model = { ...syntheticModel("tiny-test", "f32"), chatTemplate: template };

describe("fuzzed JSON bodies: never a 5xx, errors in OpenAI's shape", () => {
  let s: TestServer;
  beforeAll(async () => {
    // A short context keeps generation cheap whatever max_tokens or n the fuzzer finds valid.
    s = await startServer(model, { maxModelLen: 48 }, { servedModelName: "tiny" });
  });
  afterAll(() => s.close(1000));

  /** Sends `text` and checks the answer. */
  async function check(path: string, text: string): Promise<void> {
    const res = await fetch(`${s.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: text,
    });
    const answer = await res.text();
    const context = `${res.status} ${answer.slice(0, 300)}`;
    expect(res.status, context).toBeLessThan(500);
    if (res.status >= 400) {
      const body = JSON.parse(answer);
      expect(Object.keys(body), context).toEqual(["error"]);
      expect(body.error, context).toEqual({
        message: expect.stringMatching(/\S/),
        type: expect.any(String),
        param: body.error.param === null ? null : expect.any(String),
        code: res.status,
      });
      // A union that failed as a whole says only this; the error must say what was expected instead.
      expect(body.error.message, context).not.toMatch(/(^|: )Invalid input$/);
      return;
    }
    expect(res.status, context).toBe(200);
    if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
      const events = answer.split("\n\n").filter((e) => e !== "");
      expect(events.at(-1), context).toBe("data: [DONE]");
      for (const event of events.slice(0, -1)) {
        expect(JSON.parse(event.replace(/^data: /, "")), event).not.toHaveProperty("error");
      }
    } else {
      JSON.parse(answer);
    }
  }

  for (const [path, numRuns] of [
    ["/v1/completions", 250],
    ["/v1/chat/completions", 250],
    ["/tokenize", 120],
    ["/detokenize", 120],
  ] as const) {
    test(`POST ${path}`, async () => {
      await fc.assert(
        fc.asyncProperty(bodies(path), (text) => check(path, text)),
        { numRuns: numRuns * scale },
      );
    });
  }
});
