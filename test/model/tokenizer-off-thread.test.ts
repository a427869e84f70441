import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { InputError } from "../../src/model/errors.js";
import { loadModel } from "../../src/model/load.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import {
  HfTokenizer,
  tokenizerConfigFromVocab,
  tokenizerJsonFromVocab,
} from "../../src/model/tokenizer/hf-tokenizer.js";
import { OffThreadTokenizer } from "../../src/model/tokenizer/off-thread.js";
import type { EncodeRequest, TextPart, Tokenizer, VocabSpec } from "../../src/model/tokenizer/tokenizer.js";
import { tinyByteLevelSpec } from "../tokenizer-fixtures.js";

const sentencePieceSpec = loadModel(bundledModelPath).vocab as VocabSpec;
const byteLevelSpec = tinyByteLevelSpec("llama-bpe");

const text = fc.string({
  unit: fc.oneof(
    fc.constantFrom("<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|user_tag|>", " ", "\n"),
    fc.string({ unit: "binary", minLength: 1, maxLength: 3 }),
  ),
  maxLength: 30,
});
const request: fc.Arbitrary<EncodeRequest> = fc.oneof(
  fc.record({ text, addSpecial: fc.boolean(), parseSpecial: fc.boolean() }),
  fc.record({
    text: fc.array(fc.record({ text, parseSpecial: fc.boolean() }), { maxLength: 4 }) as fc.Arbitrary<
      TextPart[]
    >,
    addSpecial: fc.boolean(),
  }),
);

const inline = (tokenizer: Tokenizer, requests: readonly EncodeRequest[]) =>
  requests.map(({ text, ...opts }) => tokenizer.encode(text, opts));

describe.each([
  { name: "SentencePiece (the demo model)", tokenizer: createTokenizer(sentencePieceSpec) },
  { name: "byte-level BPE", tokenizer: createTokenizer(byteLevelSpec) },
  {
    name: "an HF tokenizer.json",
    tokenizer: new HfTokenizer(
      tokenizerJsonFromVocab(byteLevelSpec),
      tokenizerConfigFromVocab(byteLevelSpec),
    ),
  },
])("the worker thread encodes as the calling thread does: $name", ({ tokenizer }) => {
  // Threshold 0: every call goes to the worker.
  const offThread = new OffThreadTokenizer(tokenizer, 0);
  afterAll(() => offThread.close());

  test("for any batch of strings and parts, special-token spellings included", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 4 }), async (requests) => {
        expect(await offThread.encode(requests)).toEqual(inline(tokenizer, requests));
      }),
      { numRuns: 100 },
    );
  });

  test("for a text of 200,000 characters", async () => {
    const long = "In the beginning God created the heaven and the earth.</s>\n".repeat(3400);
    const [ids] = await offThread.encode([{ text: long }]);
    expect(ids).toEqual(tokenizer.encode(long));
  });
});

describe("failures", () => {
  const tokenizer = createTokenizer(sentencePieceSpec);

  test("a tokenizer error in the worker is the same InputError", async () => {
    // Neither byte pieces nor <unk>: a character outside the vocabulary cannot be tokenized.
    const spec: VocabSpec = {
      model: "llama",
      tokens: ["▁", "a"],
      scores: [0, 0],
      addBos: false,
      addEos: false,
    };
    const offThread = new OffThreadTokenizer(createTokenizer(spec), 0);
    const call = offThread.encode([{ text: "az" }]);
    await expect(call).rejects.toThrow(InputError);
    await expect(call).rejects.toThrow(/cannot tokenize "z"/);
    expect(await offThread.encode([{ text: "aa" }])).toEqual([createTokenizer(spec).encode("aa")]);
    await offThread.close();
  });

  test("a worker that cannot start fails the large calls with an error; small ones stay inline", async () => {
    const broken: Tokenizer = Object.create(tokenizer, {
      recipe: { value: { kind: "vocab", spec: { model: "bert" }, source: "broken.gguf" } },
    });
    const offThread = new OffThreadTokenizer(broken, 100);
    const large = "word ".repeat(100);
    await expect(offThread.encode([{ text: large }])).rejects.toThrow(
      /tokenizer thread failed: broken\.gguf: unsupported tokenizer model "bert"/,
    );
    // The next large call starts a new thread, which fails the same way: no crash, no hang.
    await expect(offThread.encode([{ text: large }])).rejects.toThrow(/tokenizer thread failed/);
    expect(await offThread.encode([{ text: "small" }])).toEqual([tokenizer.encode("small")]);
    await offThread.close();
  });

  test("close() fails the calls still running; a later call starts a new thread", async () => {
    const offThread = new OffThreadTokenizer(tokenizer, 0);
    const running = offThread.encode([{ text: "In the beginning ".repeat(20_000) }]);
    await offThread.close();
    await expect(running).rejects.toThrow(/tokenizer thread stopped/);
    expect(await offThread.encode([{ text: "light" }])).toEqual([tokenizer.encode("light")]);
    await offThread.close();
  });
});

test("the worker holds the process open while it has work, and never after", () => {
  const script = `
    import { loadModel } from "./src/model/load.ts";
    import { OffThreadTokenizer } from "./src/model/tokenizer/off-thread.ts";
    const offThread = new OffThreadTokenizer(loadModel(${JSON.stringify(bundledModelPath)}).tokenizer, 0);
    await offThread.encode([{ text: "start the thread" }]);
    offThread.encode([{ text: "In the beginning ".repeat(1000) }]).then(([ids]) => console.log(ids.length));
  `;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 30_000,
  });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  expect(Number(run.stdout.trim())).toBeGreaterThan(1000);
});
